"""The RAP rewards, called the way TRL calls them."""

import pytest

from rap_hf.rewards import accuracy_reward, completion_text, format_reward, rap_reward


def _conversational(text):
    return [{"role": "assistant", "content": text}]


RIGHT = "<think>The square is red.</think> \\boxed{red}"
RIGHT_UNFORMATTED = "It is \\boxed{red}"
WRONG_FORMATTED = "<think>Looks blue.</think> \\boxed{blue}"
NOTHING = "I do not know"


def test_rewards_grade_answer_and_format():
    completions = [_conversational(t) for t in (RIGHT, RIGHT_UNFORMATTED, WRONG_FORMATTED, NOTHING)]
    answers = ["red"] * 4
    kwargs = dict(prompts=[[]] * 4, completion_ids=[[1]] * 4, trainer_state=None, rap_id=list("abcd"))
    assert accuracy_reward(completions=completions, answer=answers, **kwargs) == [1.0, 1.0, 0.0, 0.0]
    assert format_reward(completions=completions, answer=answers, **kwargs) == [1.0, 0.0, 1.0, 0.0]
    assert rap_reward(completions=completions, answer=answers, **kwargs) == pytest.approx([1.0, 0.9, 0.1, 0.0])


def test_plain_strings_block_content_and_options():
    blocks = [{"role": "assistant", "content": [{"type": "text", "text": "<think>x</think> "},
                                                {"type": "text", "text": "\\boxed{B}"}]}]
    assert completion_text(blocks) == "<think>x</think> \\boxed{B}"
    # The option letter or the option's text both count when the row has choices.
    completions = [blocks, "<think>y</think> \\boxed{blue}", "\\boxed{3.5}"]
    assert accuracy_reward(completions, answer=["B", "B", "3"],
                           choices=[["red", "blue"], ["red", "blue"], None]) == [1.0, 1.0, 0.0]


def test_missing_answers_are_a_clear_error():
    with pytest.raises(ValueError, match="no `answer` column"):
        rap_reward(completions=["\\boxed{1}"], prompts=["q"])


def test_options_in_any_stored_form_and_numeric_answers():
    response = ["<think>x</think> \\boxed{blue}"]
    for options in (["red", "blue"], '["red", "blue"]', {"A": "red", "B": "blue"}):
        assert accuracy_reward(response, answer=["B"], choices=[options]) == [1.0]
    assert accuracy_reward(["\\boxed{3}", "\\boxed{0}"], answer=[3, 0]) == [1.0, 1.0]


def test_multiple_choice_values_are_graded_against_the_row_options():
    """TRL hands the `choices` column over as lists or as stored text; the rewards grade the option's value
    (and refuse another option's value) through rap_hf.verify with those options."""
    completions = ["<think>x</think> \\boxed{145^\\circ}", "<think>x</think> \\boxed{140°}",
                   "<think>x</think> \\boxed{C. 145°}", "<think>x</think> \\boxed{\\frac{17}{2}}"]
    angles = '["135°", "140°", "145°", "150°"]'
    choices = [angles, angles, ["135°", "140°", "145°", "150°"], "['7.5', '8', '8.5', '17']"]
    assert accuracy_reward(completions, answer=["C"] * 4, choices=choices) == [1.0, 0.0, 1.0, 1.0]
    assert rap_reward(completions, answer=["C"] * 4, choices=choices) == pytest.approx([1.0, 0.1, 1.0, 1.0])
