"""Stage `settings@<arch>`: what `train@<arch>` reads from params.yaml, resolved (the
architecture's own sections over the shared keys, its module's defaults filled in), into
data/settings/<arch>.json. The train stage depends on this file rather than on the params
themselves, so it reruns exactly when its architecture's settings change: a shared key that the
architecture overrides (`-S model.hid_dim=1024` for the Transformer) retrains nothing."""

from nmt.cli import run_stage, stage_arch
from nmt.config import load_params
from nmt.io import write_json
from nmt.models import model_params
from nmt.paths import SETTINGS


def main() -> None:
    arch = stage_arch(__doc__)
    params = load_params()
    settings = {
        "seed": params.seed,
        "device": params.device,
        "vocab": params.vocab_of(arch),
        "langs": [params.data.src_lang, params.data.trg_lang],
        "batch": params.batch.model_dump(),
        "model": model_params(params, arch).model_dump(),
        "train": params.train_params(arch).model_dump(),
    }
    write_json(SETTINGS / f"{arch}.json", settings)
    print(f"settings: {arch}: {SETTINGS / arch}.json")


if __name__ == "__main__":
    run_stage(main)
