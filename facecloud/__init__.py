"""facecloud: a self-hosted face recognition cloud speaking Tencent Cloud IAI API 3.0."""

__version__ = "0.1.0"
