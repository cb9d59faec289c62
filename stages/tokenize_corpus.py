"""Stage `tokenize`: spaCy-tokenize every split (cased) into data/tokens/<split>.parquet, for
word vocabularies and tokenized BLEU; streaming, so that memory holds one chunk of sentences
whatever the corpus size."""

from nmt.cli import run_stage
from nmt.config import load_params
from nmt.io import write_parquet_chunks
from nmt.paths import RAW, TOKENS
from nmt.tokenization import tokenized_chunks


def main() -> None:
    data = load_params().data
    for split in data.splits:
        chunks = tokenized_chunks(RAW, split, data.src_lang, data.trg_lang)
        pairs = write_parquet_chunks(TOKENS / f"{split}.parquet", chunks)
        print(f"tokenize: {split}: {pairs} pairs")


if __name__ == "__main__":
    run_stage(main)
