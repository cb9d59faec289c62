"""The names of languages in what other tools list: LibreTranslate's API, Argos Translate's
packages. Another code is named by itself."""

NAMES = {"de": "German", "en": "English", "fr": "French", "cs": "Czech"}


def language_name(code: str) -> str:
    return NAMES.get(code, code)
