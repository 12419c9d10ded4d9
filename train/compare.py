"""`edgedigits compare`: training choices side by side, measured on the same data.

One short run per combination of the `--vary` values and per seed, all on the same validation
split and training subset (split seed 0; the seed changes the initial weights, augmentation and
batch order), each evaluated on the full 10k test set. Every run has its own folder under
`OUT/runs/` (a normal run folder: checkpoint, card, curves, `last.pt`) and, once finished, a
`result.json` written atomically: a rerun skips finished runs and resumes an interrupted one from
its `last.pt`. `OUT/report.md`, `OUT/report.json` and `OUT/curves.png` are rewritten after every run.
"""

import itertools
import json
import shlex
import statistics
import time
from dataclasses import asdict
from pathlib import Path

from edgedigits.common import positive_int
from edgedigits.errors import EdgeDigitsError

from .cli import add_data_dir, hidden_sizes, non_negative_float
from .names import (ACTIVATION_NAMES, LOSS_NAMES, MODEL_NAMES, OPTIMIZER_NAMES, POOL_NAMES,
                    SCHEDULE_NAMES)

# the default short settings: the 4-activation x 3-seed comparison takes about 11 minutes of CPU on 2 cores
SHORT = {"model": "cnn", "epochs": 3, "limit": 4000}
SPLIT_SEED = 0
CHOICES = {"model": MODEL_NAMES, "activation": ACTIVATION_NAMES, "pool": POOL_NAMES, "loss": LOSS_NAMES,
           "optimizer": OPTIMIZER_NAMES, "schedule": SCHEDULE_NAMES}
INTS = ("epochs", "batch_size", "patience", "val_size", "limit", "negatives")
FLOATS = ("lr", "momentum", "weight_decay", "label_smoothing", "l1", "dropout")
SWITCHES = {"on": True, "off": False, "true": True, "false": False, "yes": True, "no": False}
KEYS = (*CHOICES, *INTS, *FLOATS, "batchnorm", "hidden", "augment")


def parse_value(key: str, text: str):
    """One value of KEY from its text ('relu', '0.3', 'off', '256+128')."""
    if key in CHOICES:
        if text not in CHOICES[key]:
            raise EdgeDigitsError(f"{key}={text}: choose from {', '.join(CHOICES[key])}")
        return text
    try:
        if key in INTS:
            return positive_int(text)
        if key in FLOATS:
            return non_negative_float(text)
        if key == "hidden":
            return hidden_sizes(text)
    except Exception as e:  # argparse.ArgumentTypeError
        raise EdgeDigitsError(f"{key}={text}: {e}") from None
    if text.lower() not in SWITCHES:       # batchnorm, augment
        raise EdgeDigitsError(f"{key}={text}: say on or off")
    return SWITCHES[text.lower()]


def parse_setting(text: str, many: bool):
    """'KEY=a,b,c' -> (key, [values]); 'KEY=v' -> (key, value). Hidden sizes in one value join with '+'."""
    key, sep, values = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not values:
        raise EdgeDigitsError(f"{text!r}: write KEY=VALUE{',VALUE...' if many else ''}")
    if key not in KEYS:
        raise EdgeDigitsError(f"{key!r} cannot be varied; choose from {', '.join(KEYS)}")
    parsed = [parse_value(key, v) for v in values.split(",")] if many else parse_value(key, values)
    return key, parsed


def show(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return "+".join(str(v) for v in value)
    return str(value)


def run_name(settings: dict, seed: int) -> str:
    return ",".join(f"{k}={show(v)}" for k, v in settings.items()) + f",seed={seed}"


def make_recipe(common: dict, settings: dict, seed: int, threads: int):
    from .augment import AugmentConfig
    from .train import QUICK, Recipe

    recipe = Recipe(**{**QUICK, "seed": seed, "split_seed": SPLIT_SEED, "threads": threads})
    for key, value in {**common, **settings}.items():
        if key == "augment":
            value = (AugmentConfig() if value else AugmentConfig.off()).to_dict()
        setattr(recipe, key, value)
    recipe.min_epochs = recipe.epochs       # a short run is never stopped early
    return recipe


def epochs_to(val_curve: list, target: float):
    """The first epoch whose validation accuracy reached `target`, or None."""
    return next((epoch for epoch, acc in enumerate(val_curve, 1) if acc >= target), None)


def same_recipe(stored: dict, recipe) -> bool:
    """Whether a run folder's recipe.json is this recipe; a field the trainer gained since counts as
    the same while it has its default value."""
    wanted, defaults = json.loads(json.dumps(asdict(recipe))), asdict(type(recipe)())
    return all(stored.get(k, defaults.get(k)) == wanted.get(k, "?") for k in stored.keys() | wanted.keys())


def run_one(recipe, folder: Path, data_dir, device: str, log) -> dict:
    """Train one run (resuming its last.pt if there is one) unless its result.json is there."""
    from .checkpoint import atomic_write_text
    from .train import fit

    recipe_path, result_path = folder / "recipe.json", folder / "result.json"
    if recipe_path.exists() and not same_recipe(json.loads(recipe_path.read_text()), recipe):
        raise EdgeDigitsError(f"{folder} holds a run with other settings (another --epochs, --limit, --set?); "
                              f"use another --out")
    if result_path.exists():
        return json.loads(result_path.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(recipe_path, json.dumps(asdict(recipe), indent=1))
    t0, cpu0 = time.time(), time.process_time()
    config = fit(recipe, data_dir, folder, device, resume=(folder / "last.pt").exists(), log=log)
    history = json.loads((folder / "history.json").read_text())
    result = {"name": folder.name, "seed": recipe.seed, "test_accuracy": config["test_accuracy"],
              "val_accuracy": config["val_accuracy"], "best_epoch": config["best_epoch"],
              "params": config["params"], "macs": config["macs"],
              "train_time_s": config["train_time_s"], "wall_s": round(time.time() - t0, 1),
              "cpu_s": round(time.process_time() - cpu0, 1),
              "val_curve": [h["val_acc"] for h in history], "recipe": asdict(recipe)}
    atomic_write_text(result_path, json.dumps(result, indent=1) + "\n")
    return result


def summarize(settings: dict, results: list, target: float) -> dict:
    accs = [r["test_accuracy"] for r in results]
    reached = [e for e in (epochs_to(r["val_curve"], target) for r in results) if e is not None]
    return {"settings": settings, "seeds": [r["seed"] for r in results], "test_accuracy_mean": statistics.mean(accs),
            "test_accuracy_sd": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "test_accuracy_min": min(accs), "test_accuracy_max": max(accs), "params": results[0]["params"],
            "epochs_to_target_mean": statistics.mean(reached) if reached else None,
            "reached_target": len(reached), "train_time_s_mean": statistics.mean(r["train_time_s"] for r in results),
            "wall_s_mean": statistics.mean(r["wall_s"] for r in results),
            "cpu_s_mean": statistics.mean(r["cpu_s"] for r in results)}


def markdown(report: dict) -> str:
    target, keys = report["target"], list(report["vary"])
    c = report["common"]
    lines = [f"# Comparison: {', '.join(keys)}", "", f"`{report['command']}`", "",
             f"{c['model']}, {c['epochs']} epochs on {c['train']:,} training digits, best epoch by "
             f"validation on {c['val']:,} (the same split and subset for every run, split seed {SPLIT_SEED}), "
             f"test on {c['test']:,}. Seeds {', '.join(map(str, report['seeds']))}: initial weights, "
             f"augmentation and batch order. Finished runs: {report['finished']} of {report['planned']}.", "",
             "| " + " | ".join(keys) + f" | test accuracy (mean ± sd) | min - max | parameters | "
             f"epochs to {100 * target:g}% val | wall / CPU time per run |",
             "|" + "---|" * len(keys) + "---:|---:|---:|---:|---:|"]
    for s in report["summary"]:
        n = len(s["seeds"])
        to_target = (f"{s['epochs_to_target_mean']:.1f} ({s['reached_target']}/{n})"
                     if s["reached_target"] else f"- (0/{n})")
        lines.append("| " + " | ".join(show(s["settings"][k]) for k in keys) +
                     f" | {100 * s['test_accuracy_mean']:.2f}% ± {100 * s['test_accuracy_sd']:.2f} "
                     f"| {100 * s['test_accuracy_min']:.2f} - {100 * s['test_accuracy_max']:.2f} "
                     f"| {s['params']:,} | {to_target} | {s['wall_s_mean']:.0f} s / {s['cpu_s_mean']:.0f} s |")
    lines += ["", f"Wall time of the runs: {report['wall_s'] / 60:.1f} min (CPU time {report['cpu_s'] / 60:.1f} min: "
              f"the wall time grows when other jobs share the cores). Validation curves: `curves.png`.", ""]
    return "\n".join(lines)


def plot(summary: list, runs: dict, keys: list, path: Path) -> Path:
    """Validation accuracy per epoch: the mean over seeds of each combination, min-max shaded."""
    import numpy as np

    from .plots import plt, save

    fig, ax = plt.subplots(figsize=(7, 4.2))
    low = 100.0
    for s in summary:
        curves = np.array([r["val_curve"] for r in runs[run_key(s["settings"])]]) * 100
        epochs = np.arange(1, curves.shape[1] + 1)
        label = ", ".join(f"{k}={show(s['settings'][k])}" for k in keys)
        line, = ax.plot(epochs, curves.mean(0), marker="o", label=label)
        ax.fill_between(epochs, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.15)
        low = min(low, curves.mean(0)[1:].min() if len(epochs) > 1 else curves.mean())
    ax.set(xlabel="epoch", ylabel="validation accuracy (%)", title="validation accuracy (mean over seeds, min-max)")
    ax.set_ylim(max(0.0, np.floor(low) - 1), 100)        # from the second epoch on: the first is far below
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def run_key(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True)


def write_report(out: Path, report: dict, runs: dict) -> None:
    from .checkpoint import atomic_write_text

    atomic_write_text(out / "report.json", json.dumps(report, indent=1) + "\n")
    atomic_write_text(out / "report.md", markdown(report))
    if report["summary"]:
        plot(report["summary"], runs, list(report["vary"]), out / "curves.png")


def compare(vary: dict, common: dict, seeds: int, out: Path, data_dir=None, device: str = "cpu",
            target: float = 0.95, threads: int = 0, command: str = "", on_log=None) -> dict:
    """Train every combination of `vary` (key -> values) x seeds 0..seeds-1 with the `common`
    settings; return the report. `on_log(run, message)` sees every trainer log line."""
    from tqdm import tqdm

    from .train import model_kwargs

    combos = [dict(zip(vary, values)) for values in itertools.product(*vary.values())]
    plan = [(settings, seed) for settings in combos for seed in range(seeds)]
    recipes = [make_recipe(common, settings, seed, threads) for settings, seed in plan]
    for recipe in recipes:
        model_kwargs(recipe)            # a combination that cannot be built fails now, not an hour in
    runs, t_all, cpu_all = {}, 0.0, 0.0
    bar = tqdm(zip(plan, recipes), total=len(plan), desc="runs", unit="run", dynamic_ncols=True)
    for (settings, seed), recipe in bar:
        folder = out / "runs" / run_name(settings, seed)
        bar.set_postfix_str(folder.name)
        log_path = folder / "train.log"

        def log(message, folder=folder, log_path=log_path):
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "a") as f:
                f.write(message + "\n")
            if on_log:
                on_log(folder.name, message)

        result = run_one(recipe, folder, data_dir, device, log)
        runs.setdefault(run_key(settings), []).append(result)
        t_all += result["wall_s"]
        cpu_all += result["cpu_s"]
        first = recipes[0]
        report = {"command": command, "vary": {k: [show(v) for v in vs] for k, vs in vary.items()},
                  "common": {"model": first.model, "epochs": first.epochs, "train": first.limit or 60000 - first.val_size,
                             "val": first.val_size, "test": 10000},
                  "set": {k: show(v) for k, v in common.items()},
                  "seeds": list(range(seeds)), "target": target, "planned": len(plan),
                  "finished": sum(len(v) for v in runs.values()), "wall_s": round(t_all, 1), "cpu_s": round(cpu_all, 1),
                  "summary": [summarize(s, runs[run_key(s)], target) for s in combos if run_key(s) in runs],
                  "runs": [r for v in runs.values() for r in v]}
        write_report(out, report, runs)
    bar.close()
    return report


def register(sub) -> None:
    p = sub.add_parser("compare", help="train short runs that differ in one choice and compare them",
                       description="Train one short run per combination of the --vary values and per seed "
                       "on the same split, then write OUT/report.md (test accuracy mean and spread over "
                       "seeds, parameters, epochs to the target, time), OUT/curves.png and OUT/report.json. "
                       "Rerunning the same command skips finished runs and resumes an interrupted one.")
    p.add_argument("--vary", action="append", required=True, metavar="KEY=A,B,...",
                   help=f"a choice and its values (repeatable: every combination runs); KEY is one of "
                   f"{', '.join(KEYS)}; hidden sizes of one MLP join with '+' (hidden=128,256+128)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=V",
                   help="a setting shared by every run (repeatable), e.g. --set model=mlp")
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds per combination (default 3)")
    p.add_argument("--epochs", type=positive_int, default=SHORT["epochs"],
                   help=f"epochs per run (default {SHORT['epochs']})")
    p.add_argument("--limit", type=positive_int, default=SHORT["limit"],
                   help=f"training digits per run, a fixed subset (default {SHORT['limit']})")
    p.add_argument("--target", type=float, default=95.0, help="validation accuracy in %% whose epoch is reported "
                   "(default 95: the short runs end near 96-97%%; 99 for longer runs; a rerun with another "
                   "target only rewrites the report)")
    p.add_argument("--threads", type=positive_int, help="CPU threads for torch")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=Path("runs/compare"), help="report folder (default runs/compare)")
    add_data_dir(p)
    p.set_defaults(func=cmd_compare)


def command_line(args) -> str:
    parts = ["edgedigits", "compare"] + [f"--vary {v}" for v in args.vary] + [f"--set {s}" for s in args.set]
    parts += [f"--seeds {args.seeds}", f"--epochs {args.epochs}", f"--limit {args.limit}"]
    parts += [f"--target {args.target:g}"] if args.target != 95.0 else []
    return " ".join(parts + [f"--out {shlex.quote(str(args.out))}"])


def cmd_compare(args) -> int:
    vary = dict(parse_setting(v, many=True) for v in args.vary)
    common = {"model": SHORT["model"], **dict(parse_setting(s, many=False) for s in args.set),
              "epochs": args.epochs, "limit": args.limit}
    if not 0 < args.target <= 100:
        raise EdgeDigitsError(f"--target {args.target}: a percentage in (0, 100]")
    report = compare(vary, common, args.seeds, args.out, args.data_dir, args.device, args.target / 100,
                     args.threads or 0, command_line(args))
    print((args.out / "report.md").read_text())
    print(f"-> {args.out}/report.md, report.json, curves.png")
    return 0 if report["finished"] == report["planned"] else 1
