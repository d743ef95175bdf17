"""What the batch job reads: media globs and a JSONL manifest, expanded into ``VideoRef``s."""

from __future__ import annotations

import json
from collections.abc import Sequence

from apache_beam.io.filesystems import FileSystems

from sentistream.transforms.records import VideoRef

# Files a glob may also match that are not media: sidecars and manifests.
SIDECAR_SUFFIXES = (".vtt", ".srt", ".json", ".jsonl", ".txt", ".md", ".csv")


def expand_inputs(
    patterns: Sequence[str],
    manifest: str | None = None,
    channel_roles: tuple[str, ...] | None = None,
) -> list[VideoRef]:
    """Expand media globs (sorted per pattern) and the manifest into refs.

    Raises:
        ValueError: naming a pattern that matches no media file, or a bad manifest line.
    """
    refs: list[VideoRef] = []
    for pattern in patterns:
        matched = [
            m.path
            for result in FileSystems.match([pattern])
            for m in result.metadata_list
            if not m.path.lower().endswith(SIDECAR_SUFFIXES)
        ]
        if not matched:
            raise ValueError(f"--input {pattern!r} matches no media file")
        refs.extend(VideoRef(uri=path, channel_roles=channel_roles) for path in sorted(matched))
    if manifest:
        refs.extend(read_manifest(manifest, channel_roles))
    return refs


def read_manifest(path: str, default_roles: tuple[str, ...] | None) -> list[VideoRef]:
    """One ``VideoRef`` per JSON object line: ``uri`` (required), ``video_id``,
    ``caption_uri``, ``channel_roles`` (else ``default_roles``), ``metadata``."""
    refs = []
    with FileSystems.open(path) as f:
        for n, line in enumerate(f.read().decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                roles = item.get("channel_roles")
                refs.append(
                    VideoRef(
                        uri=item["uri"],
                        video_id=item.get("video_id"),
                        caption_uri=item.get("caption_uri"),
                        channel_roles=tuple(roles) if roles else default_roles,
                        metadata={str(k): str(v) for k, v in item.get("metadata", {}).items()},
                    )
                )
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ValueError(f"{path}:{n}: bad manifest line ({exc}): {line[:200]}") from exc
    return refs
