"""Scores of translations against references, as published Multi30k numbers are reported.

- `bleu`: sacreBLEU on detokenized text against the raw reference file, lowercased (our
  models write lowercase), with its signature, so it compares with other sacreBLEU scores.
- `bleu_tokenized`: corpus BLEU on the lowercased spaCy tokens of hypothesis and reference,
  the number the classic PyTorch tutorials report (sacreBLEU with tokenize="none").
- `chrf`: sacreBLEU's chrF on the same text as `bleu`.
"""

from __future__ import annotations

from sacrebleu.metrics import BLEU, CHRF

from nmt.tokenization import detokenize


def score_translations(
    hypotheses: list[list[str]], references: list[str], reference_tokens: list[list[str]]
) -> tuple[dict[str, float], dict[str, str]]:
    """Scores and the sacreBLEU signatures that say how each was computed."""
    if not (len(hypotheses) == len(references) == len(reference_tokens)):
        raise ValueError(
            f"{len(hypotheses)} hypotheses for {len(references)} references "
            f"and {len(reference_tokens)} tokenized references"
        )
    text = [detokenize(tokens) for tokens in hypotheses]
    bleu, chrf = BLEU(lowercase=True), CHRF(lowercase=True)
    bleu_tokenized = BLEU(tokenize="none", force=True)  # tokenized on purpose: no warning
    scores = {
        "bleu": bleu.corpus_score(text, [references]).score,
        "bleu_tokenized": bleu_tokenized.corpus_score(
            [" ".join(h) for h in hypotheses], [[" ".join(r) for r in reference_tokens]]
        ).score,
        "chrf": chrf.corpus_score(text, [references]).score,
    }
    signatures = {
        "bleu": str(bleu.get_signature()),
        "bleu_tokenized": str(bleu_tokenized.get_signature()),
        "chrf": str(chrf.get_signature()),
    }
    return scores, signatures
