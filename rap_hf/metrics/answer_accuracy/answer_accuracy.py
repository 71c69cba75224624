"""Answer accuracy of free-form VLM responses: the final `\\boxed{}` answer against the ground truth.

An `evaluate` metric module, loaded by path (it works offline):

    >>> import evaluate  # doctest: +SKIP
    >>> from rap_hf.metrics import answer_accuracy_path  # doctest: +SKIP
    >>> metric = evaluate.load(answer_accuracy_path())  # doctest: +SKIP

Grading is `rap_hf.verify.is_correct`, the same rule RAP's rollouts and GRPO rewards use, so an
evaluation number means what a training reward means.

`evaluate` copies this file into its modules cache and imports it from there: imports must be
absolute (it resolves `rap_hf` from the installed package) and one per line (its import scanner
misreads `import a, b`).
"""

from __future__ import annotations

import datasets
import evaluate

from rap_hf.data.answers import parse_choices
from rap_hf.verify import is_correct
from rap_hf.verify import is_formatted

_DESCRIPTION = """\
Answer accuracy for reasoning responses with a final boxed answer. The last `\\boxed{...}` of each
response is compared with the ground-truth answer: words and option letters as normalised strings,
numbers and expressions with math-verify (so "0.5" matches "\\frac{1}{2}", "3" does not match "3.5",
"-5" does not match "5"). A response without a boxed answer is wrong. Multiple-choice rows may name
the option letter, or give the option's value when `choices` are given ("145°" for option C); another
option's value, or a value equal to two options, is wrong. `format_rate` is the share of
responses that reason inside <think> </think> and then give a boxed answer (the format reward of
RAP's released training code).
"""

_CITATION = """\
@article{rap2025truthinthefew,
  title   = {Truth in the Few: High-Value Data Selection for Efficient Multi-Modal Reasoning},
  journal = {arXiv preprint arXiv:2506.04755},
  year    = {2025}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): Model responses; only the last `\\boxed{}` of each counts.
        None or "" (a row that could not be generated) is wrong.
    references (`list` of `str`): Ground-truth answers: a number or expression, a word or phrase,
        or an option letter.
    choices (`list` of (`list` of `str` or None), *optional*): Keyword argument of `compute` only
        (not of `add`/`add_batch`): the options of each row (None for a row without options).
        With them a boxed option value ("blue", "145^\\circ") matches its letter ("B") when it matches
        no other option. Lists, `{"A": ...}` dicts or JSON text, as `rap_hf.data.answers.parse_choices` reads.
    per_row (`bool`, *optional*, defaults to False): Keyword argument of `compute`: also return
        the verdict on each response, so callers grade once and keep both the rows and the totals.

Returns:
    accuracy (`float`): correct / total (0.0 when there are no rows).
    correct (`int`): Responses whose boxed answer matches.
    total (`int`): Responses graded.
    format_rate (`float`): Share of responses in the <think> ... </think> ... \\boxed{} format.
    correct_per_row, formatted_per_row (`list` of `bool`): With `per_row=True` only.

Examples:
    >>> metric = evaluate.load("rap_hf/metrics/answer_accuracy")  # doctest: +SKIP
    >>> metric.compute(predictions=["<think>2+2</think> \\\\boxed{4}", "\\\\boxed{B}"],
    ...                references=["4", "blue"], choices=[None, ["red", "blue"]])  # doctest: +SKIP
    {'accuracy': 1.0, 'correct': 2, 'total': 2, 'format_rate': 0.5}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AnswerAccuracy(evaluate.Metric):
    """Accuracy of the final boxed answers, graded by `rap_hf.verify.is_correct`."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # `choices` is not a feature: evaluate makes every feature a required input of
            # `compute`, and most benchmarks have no options. It arrives as a compute keyword.
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=["https://arxiv.org/abs/2506.04755", "https://github.com/huggingface/Math-Verify"],
        )

    def _compute(self, predictions, references, choices=None, per_row: bool = False) -> dict:
        if choices is None:
            choices = [None] * len(predictions)
        if len(choices) != len(predictions):
            raise ValueError(f"choices has {len(choices)} entries for {len(predictions)} predictions")
        correct = [
            # Options as lists, dicts or JSON text, as the scorer and the rewards read them.
            bool(is_correct(prediction or "", reference or "", parse_choices(options)))
            for prediction, reference, options in zip(predictions, references, choices)
        ]
        formatted = [bool(is_formatted(prediction)) for prediction in predictions]
        total = len(predictions)
        result = {
            "accuracy": sum(correct) / total if total else 0.0,
            "correct": sum(correct),
            "total": total,
            "format_rate": sum(formatted) / total if total else 0.0,
        }
        if per_row:
            result.update(correct_per_row=correct, formatted_per_row=formatted)
        return result
