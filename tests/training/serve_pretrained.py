"""Run ``gluon-inception train`` with one more pretrained entry registered: a file on the test's loopback server.

    python serve_pretrained.py NAME URL SHA256 -- train flags...

Every rank of a ``horovodrun`` job runs this, so the entry exists in every process, as a registered
entry would; only rank 0 downloads it (the engine loads pretrained weights there and broadcasts).
"""
import sys

from gluon_inception import get_pretrained, register_pretrained
from gluon_inception.cli.main import main

if __name__ == "__main__":
    name, url, sha256, sep, *flags = sys.argv[1:]
    assert sep == "--", "usage: serve_pretrained.py NAME URL SHA256 -- train flags..."
    file_name = url.rsplit("/", 1)[-1]
    register_pretrained(
        get_pretrained("googlenet_gluoncv_in1k").replace(
            name=name, format="gluon_inception", file_name=file_name, mirror_path=file_name, urls=(url,), repo_env=None,
            sha1=None,
            sha256=sha256,
        )  # fmt: skip
    )
    sys.exit(main(["train", *flags]))
