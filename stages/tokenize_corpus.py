"""Stage `tokenize`: spaCy-tokenize the training split (cased) into data/tokens/train.parquet,
which word vocabularies are counted from; streaming, so that memory holds one chunk of
sentences whatever the corpus size."""

from nmt.cli import run_stage
from nmt.config import load_params
from nmt.io import write_parquet_chunks
from nmt.paths import RAW, TOKENS
from nmt.tokenization import tokenized_chunks


def main() -> None:
    data = load_params().data
    chunks = tokenized_chunks(RAW, "train", data.src_lang, data.trg_lang)
    pairs = write_parquet_chunks(TOKENS / "train.parquet", chunks)
    print(f"tokenize: train: {pairs} pairs")


if __name__ == "__main__":
    run_stage(main)
