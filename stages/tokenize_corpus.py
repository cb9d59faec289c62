"""Stage `tokenize`: spaCy-tokenize and lowercase every split into data/tokens/<split>.parquet."""

from pathlib import Path

from nmt.cli import run_stage
from nmt.config import load_params
from nmt.io import write_parquet
from nmt.tokenization import tokenize_split


def main() -> None:
    data = load_params().data
    for split in data.splits:
        frame = tokenize_split(Path("data/raw"), split, data.src_lang, data.trg_lang)
        write_parquet(Path("data/tokens") / f"{split}.parquet", frame)
        print(f"tokenize: {split}: {len(frame)} pairs")


if __name__ == "__main__":
    run_stage(main)
