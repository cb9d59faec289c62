"""Stage `export@<arch>`: the trained Transformer as a CTranslate2 model folder, exports/<arch>/,
for `translate --engine ctranslate2` (float32 weights; int8 is chosen when loading)."""

from nmt.cli import run_stage, stage_item
from nmt.export import export_ctranslate2
from nmt.paths import EXPORTS, model_path


def main() -> None:
    arch = stage_item(__doc__, "arch", ["transformer"])
    export_ctranslate2(model_path(arch), EXPORTS / arch)
    print(f"export: {arch}: CTranslate2 model in {EXPORTS / arch}/")


if __name__ == "__main__":
    run_stage(main)
