"""Stage `export@<arch>`: the trained Transformer as a CTranslate2 model folder, exports/<arch>/,
for `translate --engine ctranslate2` (float32 weights; int8 is chosen when loading), and in it
the same model as an Argos Translate package, <name>.argosmodel, where its vocabulary allows."""

from nmt.argos import NoArgosPackage, write_argos_package
from nmt.cli import run_stage, stage_item
from nmt.export import export_ctranslate2
from nmt.paths import EXPORTS, model_path


def main() -> None:
    arch = stage_item(__doc__, "arch", ["transformer"])
    folder = EXPORTS / arch
    export_ctranslate2(model_path(arch), folder)
    print(f"export: {arch}: CTranslate2 model in {folder}/")
    try:
        argos = write_argos_package(folder, folder)
    except NoArgosPackage as refusal:  # a word model: the CTranslate2 export stands alone
        print(f"export: {arch}: no Argos Translate package: {refusal}")
        return
    print(f"export: {arch}: Argos Translate package {argos}")


if __name__ == "__main__":
    run_stage(main)
