"""Size of the JPEG thumbnail the gallery keeps per face (facecloud/gallery/thumbnails.py), on real photos.

Usage: .venv/bin/python bench/thumbnail_sizes.py [--px 96]
Prints one JSON line: faces measured, min / median / max bytes, the longest side in pixels."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from prerequisites import require_data

from facecloud.config import Settings
from facecloud.gallery.thumbnails import face_thumbnail
from facecloud.vision.image import decode_bytes
from facecloud.vision.pipeline import Pipeline

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SOURCES = (("verify-johns", 20), ("lfw-dev", 30), ("detection-voc", 5))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--px", type=int, default=Settings().face_thumbnail_px)
    px = parser.parse_args().px
    require_data(*(DATA / folder for folder, _ in SOURCES))
    pipeline = Pipeline.from_settings(Settings.from_env(data_dir=Path(tempfile.mkdtemp())))
    sizes = []
    for folder, count in SOURCES:
        for path in sorted((DATA / folder).rglob("*.jpg"))[:count]:
            image = decode_bytes(path.read_bytes())
            faces = pipeline.detect(image, max_faces=1, min_face_size=20)
            if faces:
                face = faces[0]
                box = (int(face.x), int(face.y), int(face.width), int(face.height))
                sizes.append(len(face_thumbnail(image.bgr, *box, px) or b""))
    print(
        json.dumps(
            {
                "bench": "thumbnail_sizes",
                "max_px": px,
                "faces": len(sizes),
                "min_bytes": min(sizes),
                "median_bytes": statistics.median(sizes),
                "max_bytes": max(sizes),
            }
        )
    )


if __name__ == "__main__":
    main()
