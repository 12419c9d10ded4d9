"""Batched augmentation on [N, 1, 28, 28] tensors in [0, 1], aimed at real ink on paper.

Each transform can be switched off. All of it runs as a few tensor ops per batch (one
grid_sample for affine + elastic), so it costs little next to the forward pass.
"""

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .names import AUG_NAMES


@dataclass
class AugmentConfig:
    affine: bool = True       # rotation, scale, shift, shear
    rotate: float = 12.0      # degrees
    scale: float = 0.12       # +- fraction
    shift: float = 0.10       # +- fraction of the image side
    shear: float = 10.0       # degrees
    elastic: bool = True      # smooth random displacement field
    elastic_alpha: float = 0.06
    thickness: bool = True    # dilate or erode strokes (pen width)
    thickness_p: float = 0.25
    blur: bool = True         # out-of-focus photos
    blur_p: float = 0.2
    contrast: bool = True     # faint pencil, grey paper
    contrast_p: float = 0.3
    noise: bool = True        # sensor noise, paper texture
    noise_p: float = 0.2

    def to_dict(self):
        return asdict(self)

    @classmethod
    def off(cls):
        return cls(affine=False, elastic=False, thickness=False, blur=False, contrast=False, noise=False)


def uniform(n, low, high, gen):
    return low + (high - low) * torch.rand(n, generator=gen)


def geometric(x, cfg: AugmentConfig, gen):
    """Random affine and elastic distortion, sampled together in one grid_sample."""
    n = x.shape[0]
    theta = torch.eye(2, 3).repeat(n, 1, 1)
    if cfg.affine:
        angle = torch.deg2rad(uniform(n, -cfg.rotate, cfg.rotate, gen))
        shear = torch.tan(torch.deg2rad(uniform(n, -cfg.shear, cfg.shear, gen)))
        scale = uniform(n, 1 - cfg.scale, 1 + cfg.scale, gen)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta[:, 0, 0], theta[:, 0, 1] = cos, -sin + shear * cos
        theta[:, 1, 0], theta[:, 1, 1] = sin, cos + shear * sin
        theta[:, :, 2] = uniform(2 * n, -2 * cfg.shift, 2 * cfg.shift, gen).view(n, 2)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    if cfg.elastic:
        coarse = torch.randn(n, 2, 4, 4, generator=gen) * cfg.elastic_alpha
        field = F.interpolate(coarse, size=x.shape[-2:], mode="bicubic", align_corners=False)
        grid = grid + field.permute(0, 2, 3, 1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def pick(n, p, gen):
    return torch.rand(n, generator=gen) < p


def thickness(x, p, gen):
    """Dilate a random subset (thick marker) and erode another (thin pen)."""
    r = torch.rand(x.shape[0], generator=gen)
    thick, thin = r < p / 2, (r >= p / 2) & (r < p)
    out = x.clone()
    if thick.any():
        out[thick] = F.max_pool2d(x[thick], 3, 1, 1) * 0.6 + x[thick] * 0.4
    if thin.any():
        out[thin] = -F.max_pool2d(-x[thin], 3, 1, 1) * 0.5 + x[thin] * 0.5
    return out


def blur(x, p, gen):
    sel = pick(x.shape[0], p, gen)
    if sel.any():
        sigma = float(uniform(1, 0.5, 1.0, gen))
        k = torch.exp(-torch.arange(-1.0, 2.0) ** 2 / (2 * sigma ** 2))
        k = (k[:, None] * k[None, :]) / (k.sum() ** 2)
        x = x.clone()
        x[sel] = F.conv2d(x[sel], k.view(1, 1, 3, 3), padding=1)
    return x


def contrast(x, p, gen):
    sel = pick(x.shape[0], p, gen).float().view(-1, 1, 1, 1)
    gain = uniform(x.shape[0], 0.55, 1.0, gen).view(-1, 1, 1, 1)
    return x * (1 - sel) + x * gain * sel


def noise(x, p, gen):
    sel = pick(x.shape[0], p, gen).float().view(-1, 1, 1, 1)
    std = uniform(x.shape[0], 0.02, 0.08, gen).view(-1, 1, 1, 1)
    return (x + sel * std * torch.randn(x.shape, generator=gen)).clamp(0, 1)


def augment(x, cfg: AugmentConfig, gen: torch.Generator):
    """Apply the switched-on transforms to a batch; returns a new tensor in [0, 1]."""
    if cfg.affine or cfg.elastic:
        x = geometric(x, cfg, gen)
    if cfg.thickness:
        x = thickness(x, cfg.thickness_p, gen)
    if cfg.blur:
        x = blur(x, cfg.blur_p, gen)
    if cfg.contrast:
        x = contrast(x, cfg.contrast_p, gen)
    if cfg.noise:
        x = noise(x, cfg.noise_p, gen)
    return x.clamp(0, 1)


def preview_grid(images, cfg: AugmentConfig, seed: int = 0, per_row: int = 12):
    """Rows: original, then each transform alone, then all together. Returns (grid, row names)."""
    x = torch.tensor(images[:per_row], dtype=torch.float32).unsqueeze(1) / 255.0
    rows, names = [x], ["original"]
    for name in AUG_NAMES:
        if getattr(cfg, name):
            only = AugmentConfig.off()
            setattr(only, name, True)
            for k, v in cfg.to_dict().items():
                if k not in AUG_NAMES:
                    setattr(only, k, v)
            # show each transform at full probability so the row is informative
            for k in ("thickness_p", "blur_p", "contrast_p", "noise_p"):
                setattr(only, k, 1.0)
            rows.append(augment(x, only, torch.Generator().manual_seed(seed)))
            names.append(name)
    rows.append(augment(x, cfg, torch.Generator().manual_seed(seed)))
    names.append("all")
    grid = torch.cat([torch.cat(list(r[:, 0]), dim=1) for r in rows], dim=0)
    return grid.numpy(), names
