"""The bytes a media probe posts, obtained at submission.

Generated media are rebuilt from the probe's recipe (a banner from its text, style and seed;
speech from its text, language, style and seed; a video from its text, language, variant and
seed), so a run of any size holds no media in memory or in the store. Corpus media are read from
the corpus file and checked against the probe's hash.
"""

from __future__ import annotations

from audit.corpus import read_corpus_media
from audit.media import IMAGE_VARIANTS, SPEECH_VARIANTS, render_banner, render_speech
from audit.packs import Modality
from audit.probe import Probe
from audit.video import PLAIN_VIDEO, VIDEO_VARIANTS, render_video

__all__ = ["probe_media"]


def probe_media(probe: Probe) -> bytes | None:
    """The media to upload with the probe, or None for a text post.

    Raises :class:`~audit.errors.RuntimeFailure` (for instance
    :class:`~audit.media.SpeechUnavailable` or :class:`~audit.video.VideoUnavailable`) or
    :class:`~audit.errors.InputError` when the media cannot be produced; adapters turn that
    into a failed submission, never a removal.
    """
    if probe.corpus_file is not None:
        return read_corpus_media(probe)
    seed = probe.media_seed or 0
    if probe.modality is Modality.IMAGE:
        return render_banner(probe.text, IMAGE_VARIANTS[probe.media_style or "image_plain"], seed)
    if probe.modality is Modality.SPEECH:
        voice = SPEECH_VARIANTS[probe.media_style or "speech_plain"]
        return render_speech(probe.text, probe.language, seed, voice)
    if probe.modality is Modality.VIDEO:
        variant = VIDEO_VARIANTS[probe.media_style or PLAIN_VIDEO]
        return render_video(probe.text, probe.language, variant, seed)
    return None
