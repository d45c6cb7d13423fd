"""Scoring an answer against a ground truth: Memento's benchmark mode for solve_task.

Normalised exact match first (SQuAD-style normalisation; ground truths may list alternatives
separated by `<|answer_split|>`, as in Memento's deepresearcher.jsonl); when that fails and a judge
model is configured, the judge decides. The reward is 1.0 or 0.0.
"""

from __future__ import annotations

import re
import string
import unicodedata

from memento_mcp.agent import prompts
from memento_mcp.agent.llm import LLM, parse_json_object
from memento_mcp.agent.steps import Judgement, Usage

ANSWER_SPLIT = "<|answer_split|>"
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation + "‘’“”")


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def alternatives(ground_truth: str) -> list[str]:
    return [a.strip() for a in ground_truth.split(ANSWER_SPLIT) if a.strip()]


def exact_match(answer: str, ground_truth: str) -> bool:
    got = normalise(answer)
    return any(got == normalise(alt) for alt in alternatives(ground_truth))


async def judge(
    task: str, answer: str, expected: str, *, llm: LLM | None = None, usage: Usage | None = None
) -> Judgement:
    if exact_match(answer, expected):
        return Judgement(reward=1.0, method="exact_match")
    if llm is None or not answer.strip():
        return Judgement(reward=0.0, method="exact_match")
    messages = [
        {"role": "system", "content": prompts.render("judge")},
        {
            "role": "user",
            "content": f"Question: {task}\nExpected answer: "
            f"{' | '.join(alternatives(expected))}\nCandidate answer: {answer}",
        },
    ]
    reply = await llm.complete(messages, json_reply=True)
    if usage is not None:
        usage.add_reply(reply)
    try:
        verdict = parse_json_object(reply.content).get("correct")
    except ValueError as exc:
        return Judgement(reward=0.0, method="llm_judge", detail=f"unreadable verdict: {exc}")
    correct = verdict is True or str(verdict).lower() == "true"
    return Judgement(reward=1.0 if correct else 0.0, method="llm_judge")
