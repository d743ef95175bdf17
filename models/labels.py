"""The label sets every model shares: the 3-class valence, and how acted emotions map to it.

``VALENCE_LABELS`` is the output order of the voice, text and fusion models and the label
set of every training report. ``EMOTION_VALENCE`` maps the acted emotions of the speech and
face corpora (RAVDESS, TESS, Emo-DB, CK+, FER2013) to valence the way the shared data's
``valence_mapped`` column does; surprise is ``ambiguous`` (either sign) and is left out of
valence figures. The voice model's own 7-emotion aggregation (where surprise counts as
positive) is a model parameter: ``models/voice/features.py``.
"""

from __future__ import annotations

VALENCE_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
AMBIGUOUS = "ambiguous"

#: Acted emotion -> valence, as the shared data's ``valence_mapped`` column does it.
EMOTION_VALENCE: dict[str, str] = {
    **dict.fromkeys(("neutral", "calm"), "neutral"),
    **dict.fromkeys(("happy", "happiness", "pleasant_surprise"), "positive"),
    **dict.fromkeys(
        ("sad", "sadness", "angry", "anger", "fearful", "fear", "disgust", "contempt"),
        "negative",
    ),
    "boredom": "negative",  # Emo-DB's valence_mapped puts boredom with negative
    **dict.fromkeys(("surprised", "surprise"), AMBIGUOUS),
}


def emotion_to_valence(emotion: str) -> str:
    """An acted emotion name -> ``negative`` / ``neutral`` / ``positive`` / ``ambiguous``."""
    key = emotion.strip().lower()
    if key not in EMOTION_VALENCE:
        raise ValueError(
            f"emotion {emotion!r} has no valence mapping; known: {sorted(EMOTION_VALENCE)}"
        )
    return EMOTION_VALENCE[key]
