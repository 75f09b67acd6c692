"""Start a real Milvus standalone server (PyPI `milvus` 2.3.5) on 127.0.0.1 and print its URI once it answers; it runs
until this process gets SIGTERM/SIGINT. The starter lives in facecloud/gallery/milvus_server.py.

    .venv/bin/python scripts/milvus_server.py --data /tmp/milvus-data      # prints http://127.0.0.1:19530"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecloud.gallery.milvus_server import main  # noqa: E402

if __name__ == "__main__":
    main()
