"""Reproducible German-to-English neural machine translation on Multi30k."""

PAD, UNK, SOS, EOS = "<pad>", "<unk>", "<sos>", "<eos>"
SPECIALS = (UNK, PAD, SOS, EOS)  # their ids are their positions: <unk>=0, <pad>=1, <sos>=2, <eos>=3
UNK_ID, PAD_ID, SOS_ID, EOS_ID = range(4)


class NMTError(Exception):
    """A problem with the user's input or environment, reported as one line without a traceback."""


class MissingInput(NMTError):
    """A file a step reads is absent or out of date. The library says which file; the stage
    runner adds which pipeline stage makes it (`nmt.paths.made_by`)."""

    def __init__(self, path: object, problem: str = "not found"):
        super().__init__(f"{path} {problem}")
        self.path = str(path)
