"""The quickstart's report: `report.json` (the keys other tools read), `report.md` and the plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ARM_NAMES = {"base": "base (warmed-up scorer, before GRPO)", "rap": "RAP subset", "random": "random subset (same size)",
             "full": "full pool"}
ARM_COLOURS = {"base": "#8c8c8c", "rap": "#c44e52", "random": "#4c72b0", "full": "#55a868"}


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def skills_line(scorer: dict[str, Any]) -> str:
    """The scorer's skills in one sentence: accuracy with the picture / without, per task."""
    skills = scorer.get("skills") or {}
    parts = [f"{task} {_pct(acc['image'])} / {_pct(acc['text'])}" for task, acc in skills.items()]
    return (f"`{Path(scorer['model']).name}` ({scorer.get('source', 'given')}); accuracy of its rollouts on the pool "
            "with the picture / without: " + "; ".join(parts) + ".") if parts else "no skills measured."


def verdict(report: dict[str, Any]) -> str:
    """Plain sentences on what the study found: RAP against the random subset of its size (beyond this
    run's resolution or not) and against the full pool, with the compute each spent."""
    acc, effect = report["heldout_accuracy"], report.get("effect") or {}
    rap, rand, full = acc.get("rap"), acc.get("random"), acc.get("full")
    if rap is None or rand is None:
        return "RAP kept no rows, so there was nothing to train on and no comparison to make."
    smallest = effect.get("resolution")
    said = f"RAP's subset scored {_pct(rap)} on the held-out rows against {_pct(rand)} for a random subset of its size"
    if smallest is None:
        said += f" ({100 * (rap - rand):+.1f} points; one seed, so this run cannot say what difference is noise)."
    else:
        beat = effect.get("rap_beats_random")
        said += (f": {100 * (rap - rand):+.1f} points, {'more than' if beat else 'within'} the {100 * smallest:.1f} "
                 "points this run can resolve (twice the standard error of the paired difference, over seeds and "
                 "held-out rows). " + ("RAP beat random." if beat else "This run cannot tell RAP from random."))
    ratio = effect.get("full_to_rap_completions")
    if full is not None and ratio:
        matched = effect.get("rap_matches_full")
        said += (f" Training on the full pool scored {_pct(full)}, generating {ratio:g} times RAP's completions; "
                 + ("RAP matched it (within the resolution)." if matched else
                    "RAP fell short of it." if matched is False else "one seed, so no resolution to compare with."))
    gains = [f"{t} {100 * g['rap_gain_over_base']:+.1f} points" for t, g in (effect.get("per_type") or {}).items()
             if g.get("rap_gain_over_base") is not None]
    if gains:
        said += " RAP's gain over the base model per planted type: " + ", ".join(gains) + "."
    return said


def _mix(counts: dict[str, int] | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "-"


def _mean_mix(per_seed: list[dict[str, int] | None]) -> str:
    """The planted mix of the random subsets, averaged over seeds."""
    found = [counts for counts in per_seed if counts]
    if not found:
        return "-"
    types = sorted({t for counts in found for t in counts})
    mean = {t: sum(counts.get(t, 0) for counts in found) / len(found) for t in types}
    return ", ".join(f"{t} {v:.0f}" for t, v in mean.items()) + (" (mean of seeds)" if len(found) > 1 else "")


def arms_table(report: dict[str, Any]) -> str:
    """The table report.md opens with: per arm its rows and their planted mix, the share of GRPO groups
    that carried signal, the compute (completions generated and seconds per run), and held-out
    accuracy overall and per planted type (means over seeds)."""
    acc, training, sel = report["heldout_accuracy"], report["training"], report["selection"]
    types = sorted({t for per in acc["per_type"].values() for t in per})
    mixes = {"base": "-", "rap": _mix(sel.get("planted_kept")), "random": _mean_mix(sel["random"]["planted_kept"]),
             "full": _mix(report["world"]["planted"]["pool"])}
    head = ("| arm | rows | planted mix of the rows | groups with signal | completions | seconds | held-out accuracy | "
            + " | ".join(types) + " |")
    lines = [head, "|---|---:|---|---:|---:|---:|---:|" + "---:|" * len(types)]
    for arm in ("base", "rap", "random", "full"):
        if acc.get(arm) is None:
            continue
        runs = acc["per_seed"][arm]
        shown = _pct(acc[arm]) + (f" ± {100 * acc['std'][arm]:.1f}" if arm != "base" and len(runs) > 1 else "")
        cells = [_pct(acc["per_type"].get(arm, {}).get(t)) for t in types]
        if arm == "base":
            front = ["-", "-", "-", "0", "-"]
        else:
            t = training[arm]
            front = [f"{t['rows']:,}", mixes[arm], _per_seed(t.get("signal_share_mean"), [], percent=True),
                     f"{t['completions']:,}", "-" if t["seconds_mean"] is None else f"{t['seconds_mean']:.1f}"]
        lines.append(f"| {ARM_NAMES[arm]} | " + " | ".join(front) + f" | {shown} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _markdown(report: dict[str, Any], selection_md: str) -> str:
    world, scorer, sel, det, timings = (report[k] for k in ("world", "scorer", "selection", "detection", "timings"))
    lines = ["# RAP quickstart report", ""]
    if report["fast"]:
        lines += ["**This is a `--fast` smoke run**: a short warm-up that teaches the answer format and little else, "
                  "few rows, one seed. It shows that every stage runs; its accuracies say nothing about RAP.", ""]
    lines += [arms_table(report), "",
              f"Per arm: the rows it trains on and their planted types; the share of GRPO groups (a prompt's "
              f"{report['training']['settings']['num_generations']} rollouts) whose rewards differ, the only ones that "
              "move the model; the completions GRPO generated and the seconds it took, per run; greedy accuracy on "
              f"{report['heldout_accuracy']['rows']} held-out rows (the `answer_accuracy` metric), overall "
              "(± the standard deviation over seeds) and per planted type.", "",
              f"**Verdict.** {verdict(report)}", "",
              "![held-out accuracy against completions](plots/accuracy_vs_completions.png)", "",
              f"**Scorer.** {skills_line(report['scorer'])}", "",
              "![held-out accuracy](plots/heldout_accuracy.png)", "",
              "## World", "",
              f"Source: {world['source']}. Pool rows: {world['rows']['pool']}, held-out rows: {world['rows']['heldout']}."]
    if world["planted"]["pool"]:
        lines.append("Planted types in the pool: " + _mix(world["planted"]["pool"]) + ".")
    lines += ["", "## Scorer", ""]
    params = scorer.get("parameters")
    lines.append(f"Model: `{scorer['model']}`" + (f", {params:,} parameters." if params else "."))
    warm = scorer.get("warm_up")
    if warm:
        cached = " (measured when it was built)" if warm["cached"] else ""
        lines.append(f"Source: {scorer.get('source', 'warmed up here')}. Warm-up: {warm.get('vision_steps', 0)} steps "
                     f"teaching the vision tower colour and count, then {warm['steps']} steps of batch "
                     f"{warm['batch_size']} at lr {warm['learning_rate']} with the tower fixed, "
                     f"{warm['seconds']} s{cached}.")
    lines += ["", "Accuracy of the scorer's rollouts on the pool, with the picture / without:", "",
              "| task | with image | text only | rows |", "|---|---:|---:|---:|"]
    for task, acc in scorer["skills"].items():
        lines.append(f"| {task} | {_pct(acc['image'])} | {_pct(acc['text'])} | {acc['rows']} |")
    lines += ["", "## Selection", "", selection_md,
              "![score distributions](plots/score_distributions.png)", ""]
    if sel.get("planted_kept"):
        lines.append(f"Planted types kept: RAP {_mix(sel['planted_kept'])}; pass-rate band "
                     f"{_mix(sel['pass_rate_band']['planted_kept'])} ({sel['pass_rate_band']['kept']} rows).")
        lines.append("")
    ace = sel.get("ace")
    if ace:
        lines += [f"ACE scored {ace['scored']} of {world['rows']['pool']} rows (a column needs "
                  f"{scorer['scoring']['ace_min_rows']} reasoning tokens after it) and flagged {ace['flagged']}.", ""]
    lines += ["## Detection of language-prior rows", ""]
    if det.get("cde_auroc_language_prior") is None and det.get("note"):
        lines.append(f"Not measured: {det['note']}.")
    else:
        lines.append(f"AUROC of ranking the planted visual rows above the planted language-prior rows "
                     f"({det['rows']['visual']} and {det['rows']['language_prior']} rows; 0.5 is chance): "
                     f"rollout CDE {det['cde_auroc_language_prior']}, logit-CDE {det['logit_cde_auroc_language_prior']}.")
    lines += ["", "## Training", ""]
    settings = report["training"]["settings"]
    lines.append(f"GRPO (`RAPGRPOTrainer`) from the scorer's weights: {settings['epochs']} passes over each training set "
                 f"and at least {settings.get('min_steps', 1)} steps, "
                 f"lr {settings['learning_rate']} (constant), {settings['num_generations']} generations per prompt, "
                 f"{settings['prompts_per_step']} prompts per step, up to {settings['max_completion_length']} new "
                 "tokens, no KL term. The RAP and random subsets train the same number of steps; the full pool the "
                 "same number of passes.")
    lines += ["", "What differs between the arms during GRPO is how many groups (a prompt's rollouts) carry signal: "
              "a group whose rewards all agree has zero advantage and moves nothing (TRL's "
              "`frac_reward_zero_std`). Per arm, the share of groups with reward variance and the informative "
              "completions per step (mean over steps; per seed after the slash), next to held-out accuracy:", "",
              "| arm | rows | steps | groups with signal | informative completions per step | held-out accuracy "
              "| seconds per run |", "|---|---:|---:|---:|---:|---:|---:|"]
    acc = report["heldout_accuracy"]
    for arm in ("rap", "random", "full"):
        t = report["training"][arm]
        seconds = "-" if t["seconds_mean"] is None else f"{t['seconds_mean']:.1f}"
        share = _per_seed(t.get("signal_share_mean"), t.get("signal_share", []), percent=True)
        informative = _per_seed(t.get("informative_completions_per_step_mean"),
                                t.get("informative_completions_per_step", []), percent=False)
        lines.append(f"| {ARM_NAMES[arm]} | {t['rows']:,} | {t['steps']:,} | {share} | {informative} | "
                     f"{_pct(acc.get(arm))} | {seconds} |")
    lines += ["", "![training signal](plots/training_signal.png)"]
    lines += ["", "## Time per stage", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {stage} | {seconds:.1f} |" for stage, seconds in timings.items()]
    lines += ["", "![time per stage](plots/timings.png)", "",
              "## Files", "",
              "- `report.json`: every figure above; `selection/`: the RAP selection (`Selection.load_from_disk`); "
              "`checkpoints/ARM-seedN/`: the trained models; `eval/NAME/`: per-row answers and summaries; "
              "`hub/subset`, `hub/model`: the repositories `push_subset` / `push_checkpoint` would upload.",
              "", f"rap-hf {report['rap_hf_version']}; " + ", ".join(
                  f"{k} {v}" for k, v in report["machine"]["versions"].items())
              + f"; {report['machine']['cpus']} CPUs, {report['machine']['device']}.", ""]
    return "\n".join(lines)


def accuracy_figure(report: dict[str, Any]):
    """Bars of held-out accuracy per arm (mean over seeds), each seed a dot, overall and per planted type."""
    from matplotlib.figure import Figure

    acc = report["heldout_accuracy"]
    arms = [arm for arm in ("base", "rap", "random", "full") if acc.get(arm) is not None]
    groups = ["all"] + sorted({t for per in acc["per_type"].values() for t in per})
    fig = Figure(figsize=(2.2 + 1.6 * len(groups), 4.0))
    ax = fig.subplots()
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        xs = [g + (i - (len(arms) - 1) / 2) * width for g in range(len(groups))]
        means = [acc[arm] if group == "all" else acc["per_type"].get(arm, {}).get(group, 0.0) for group in groups]
        ax.bar(xs, means, width=width * 0.95, color=ARM_COLOURS[arm], label=ARM_NAMES[arm])
        seeds = acc["per_seed"][arm]
        if len(seeds) > 1:  # the spread over seeds, on the overall bar
            ax.scatter([xs[0]] * len(seeds), seeds, color="black", s=10, zorder=3)
            ax.errorbar([xs[0]], [means[0]], yerr=[[means[0] - min(seeds)], [max(seeds) - means[0]]],
                        color="black", capsize=3, linewidth=1)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(0, 1)
    ax.set_ylabel("held-out accuracy")
    ax.set_title("Held-out accuracy after GRPO (dots and bar: the seeds, overall)", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(arms), frameon=False)
    fig.tight_layout()
    return fig


def _per_seed(mean: float | None, values: list, *, percent: bool) -> str:
    if mean is None:
        return "-"
    show = (lambda v: f"{100 * v:.0f} %") if percent else (lambda v: f"{v:.1f}")
    seeds = [show(v) for v in values if v is not None]
    return show(mean) + (f" / {', '.join(seeds)}" if len(seeds) > 1 else "")


def signal_figure(report: dict[str, Any]):
    """Per arm, the share of GRPO groups with reward variance at each step (mean over seeds, each
    seed faint), beside the held-out accuracy it led to."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 3.6))
    ax, bars = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    acc = report["heldout_accuracy"]
    arms = [arm for arm in ("rap", "random", "full") if report["training"][arm]["runs"]]
    for arm in arms:
        curves = [run.get("signal_share_per_step") or [] for run in report["training"][arm]["runs"]]
        for curve in curves:
            ax.plot(range(1, len(curve) + 1), curve, color=ARM_COLOURS[arm], alpha=0.25, linewidth=0.8)
        longest = max((len(c) for c in curves), default=0)
        mean = [sum(c[i] for c in curves if i < len(c)) / sum(1 for c in curves if i < len(c)) for i in range(longest)]
        ax.plot(range(1, longest + 1), mean, color=ARM_COLOURS[arm], linewidth=2, label=ARM_NAMES[arm])
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("groups with reward variance")
    ax.set_title("Training signal per step", fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    values = [acc.get(arm) or 0.0 for arm in arms]
    drawn = bars.bar(range(len(arms)), values, color=[ARM_COLOURS[arm] for arm in arms])
    bars.bar_label(drawn, labels=[f"{100 * v:.1f}" for v in values], fontsize=7)
    bars.set_xticks(range(len(arms)), arms)
    bars.set_ylim(0, 1)
    bars.set_title("Held-out accuracy", fontsize=10)
    fig.tight_layout()
    return fig


def compute_figure(report: dict[str, Any]):
    """Held-out accuracy against the completions GRPO generated, one point per arm and seed (the base
    model at 0), as the paper's main table sets accuracy beside compute."""
    from matplotlib.figure import Figure

    acc, training = report["heldout_accuracy"], report["training"]
    fig = Figure(figsize=(5.5, 3.8))
    ax = fig.subplots()
    arms = [arm for arm in ("base", "rap", "random", "full") if acc["per_seed"].get(arm)]
    spent = {arm: 0 if arm == "base" else training[arm]["completions"] for arm in arms}
    nudge = 0.012 * max(max(spent.values()), 1)  # the two subsets spend the same: draw them side by side
    for arm in arms:
        seeds = acc["per_seed"][arm]
        x = spent[arm] + {"rap": -nudge, "random": nudge}.get(arm, 0.0)
        ax.scatter([x] * len(seeds), seeds, color=ARM_COLOURS[arm], s=36, alpha=0.8, label=ARM_NAMES[arm], zorder=3)
        ax.hlines(acc[arm], x - nudge, x + nudge, color=ARM_COLOURS[arm], linewidth=2)  # the mean over seeds
    ax.set_xlabel("completions generated in GRPO (per run)")
    ax.set_ylabel("held-out accuracy")
    ax.set_title("Held-out accuracy against GRPO compute\n(a dot per seed, a bar at the mean)", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def timings_figure(report: dict[str, Any]):
    """Horizontal bars of seconds per stage."""
    from matplotlib.figure import Figure

    stages = [(k, v) for k, v in report["timings"].items() if k != "total"]
    fig = Figure(figsize=(6, 0.45 * len(stages) + 1.0))
    ax = fig.subplots()
    ax.barh([k for k, _ in stages][::-1], [v for _, v in stages][::-1], color="#4c72b0")
    ax.set_xlabel("seconds")
    ax.set_title(f"Time per stage (total {report['timings']['total']:.0f} s)", fontsize=10)
    fig.tight_layout()
    return fig


def write_report(report: dict[str, Any], rap_selection, out: Path) -> dict[str, Path]:
    """Write `report.json`, `report.md` and `plots/` into `out`; return their paths."""
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    rap_selection.report.save_plots(plots)
    accuracy_figure(report).savefig(plots / "heldout_accuracy.png", dpi=110)
    timings_figure(report).savefig(plots / "timings.png", dpi=110)
    signal_figure(report).savefig(plots / "training_signal.png", dpi=110)
    compute_figure(report).savefig(plots / "accuracy_vs_completions.png", dpi=110)
    paths = {"json": out / "report.json", "markdown": out / "report.md"}
    paths["json"].write_text(json.dumps(report, indent=2) + "\n")
    paths["markdown"].write_text(_markdown(report, rap_selection.report.to_markdown()))
    return paths
