"""Image input for predict: decoding names the file that is not an image, listing finds images in folders."""
import pytest

from gluon_inception.deploy.images import NotAnImageError, decode_image, list_image_files


def test_not_an_image_and_missing_paths_are_named(tmp_path):
    with pytest.raises(NotAnImageError, match="notes.txt: not an image"):
        decode_image(b"plain text", name="notes.txt")
    with pytest.raises(NotAnImageError, match="empty"):
        decode_image(b"", name="empty.jpg")
    (tmp_path / "b.jpg").write_bytes(b"x")
    (tmp_path / ".hidden").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.png").write_bytes(b"x")
    found = list_image_files([str(tmp_path)])
    assert [p[len(str(tmp_path)) + 1:] for p in found] == ["b.jpg", "sub/a.png"]
    with pytest.raises(FileNotFoundError, match="missing.jpg does not exist"):
        list_image_files([str(tmp_path / "missing.jpg")])
