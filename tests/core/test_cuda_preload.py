"""scripts/cuda_preload.py: the .pth hook that lets ``import mxnet`` find the pip CUDA libraries.

Checked with two small libraries built here: ``libtop`` needs ``libbase`` (as cuBLAS needs
cuBLASLt), sits in a folder that sorts first, and neither folder is on the loader path.
"""
import os
import shutil
import subprocess
import sys
import textwrap

from tests.support import ROOT, require


def _build(tmp_path):
    require(shutil.which("gcc"), "gcc, to build the test libraries")
    site = tmp_path / "site-packages"
    base_dir, top_dir = site / "nvidia" / "cudnn" / "lib", site / "nvidia" / "cublas" / "lib"
    base_dir.mkdir(parents=True)
    top_dir.mkdir(parents=True)
    (tmp_path / "base.c").write_text("int base_value(void) { return 41; }\n")
    (tmp_path / "top.c").write_text("int base_value(void);\nint top_value(void) { return base_value() + 1; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,libbase.so.8", "-o", str(base_dir / "libbase.so.8"),
                    str(tmp_path / "base.c")], check=True)  # fmt: skip
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,libtop.so.11", "-o", str(top_dir / "libtop.so.11"),
                    str(tmp_path / "top.c"), "-L" + str(base_dir), "-l:libbase.so.8"], check=True)  # fmt: skip
    shutil.copy(os.path.join(ROOT, "scripts", "cuda_preload.py"), site / "_gluon_inception_cuda.py")
    (site / "gluon_inception_cuda.pth").write_text("import _gluon_inception_cuda\n")
    # A stand-in "mxnet" that, like libmxnet.so, needs the libraries' symbols to be global.
    (site / "mxnet").mkdir()
    (site / "mxnet" / "__init__.py").write_text(
        "import ctypes\nvalue = ctypes.CDLL(None).top_value()\n"
    )
    return site


def _python(site, code):
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "PYTHONPATH")}
    # addsitedir runs the .pth files as at start-up; the folder then goes first so that the
    # stand-in, not an installed MXNet, is what "import mxnet" finds.
    script = "import site, sys; site.addsitedir(%r); sys.path.insert(0, %r)\n" % (str(site), str(site))
    script += textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)


def test_libraries_load_on_the_first_import_of_mxnet_in_dependency_order(tmp_path):
    site = _build(tmp_path)
    proc = _python(site, """
        import ctypes, sys
        before = "_gluon_inception_cuda" in sys.modules
        try:
            ctypes.CDLL(None).top_value
            loaded_early = True
        except AttributeError:
            loaded_early = False
        import mxnet
        print(before, loaded_early, mxnet.value, any(type(e).__name__ == "type" and e.__name__ == "_PreloadOnMXNet"
                                                    for e in sys.meta_path))
    """)
    assert proc.returncode == 0, proc.stderr
    # the hook was installed at start-up, loaded nothing before mxnet, then removed itself
    assert proc.stdout.split() == ["True", "False", "42", "False"]


def test_without_the_pth_file_the_libraries_are_not_found(tmp_path):
    site = _build(tmp_path)
    (site / "gluon_inception_cuda.pth").unlink()
    proc = _python(site, "import mxnet\n")
    assert proc.returncode != 0 and "top_value" in proc.stderr
