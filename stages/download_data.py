"""Stage `download`: fetch the corpus's raw files, verify their checksums, write data/raw/."""

from pathlib import Path

from nmt.cli import run_stage
from nmt.config import load_params
from nmt.download import download, read_checksums, resolve_source
from nmt.paths import RAW


def main() -> None:
    data = load_params().data
    source = resolve_source(data.url)
    files = download(
        data.splits,
        (data.src_lang, data.trg_lang),
        RAW,
        source,
        read_checksums(Path(data.checksums)),
        data.file_name,
    )
    print(f"download: {len(files)} files verified from {source}")


if __name__ == "__main__":
    run_stage(main)
