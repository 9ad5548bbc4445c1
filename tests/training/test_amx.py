"""bfloat16 training on AMX (training/amx.py): finding the BatchNorms oneDNN runs on its reference
kernel, keeping them in float32, padding convolution inputs; all of it only with AMX switched on.

AMP patches MXNet for the rest of a process, so every bfloat16 computation here runs in a child.
"""
import json
import subprocess
import sys
import textwrap

import pytest

from gluon_inception import cpu, googlenet
from gluon_inception.training import amx
from gluon_inception.training.amx import (
    LayoutProbeError,
    convbn_output_shapes,
    find_reference_norms,
    keep_norms_float32,
    pad_inputs_for_amx,
    reference_norm_shapes,
)
from tests.support import child_env
from tests.support.cpus import require_cpu

# Results depend on the CPU's instruction sets: .ci/run runs these again under DNNL_MAX_CPU_ISA=AVX2 and with AMX on.
pytestmark = pytest.mark.isa

#: The GoogLeNet layers whose bfloat16 BatchNorm backward mixes an AMX channels-last gradient with an
#: AVX-512 blocked input (or the reverse) in MXNet 1.9.1's oneDNN 2.4 (bench/profile_train_step.py) ...
MIXED_ON_AMX = {
    "features.inception4a.branch2.0",
    "features.inception4a.branch3.0",
    "features.inception4e.branch2.0",
    "features.inception4e.branch3.0",
}
#: ... and those left once the convolutions read 32-channel multiples (the 528-channel readers of
#: inception4e then run on AMX too).
MIXED_ON_AMX_PADDED = {"features.inception4a.branch2.0", "features.inception4a.branch3.0"}
#: The ConvBNs reading 32 or more channels, not a multiple of 32 (gluoncv topology).
UNEVEN_INPUTS = {
    "features.inception4b.branch2.1",  # 112
    "features.inception4d.branch2.1",  # 144
    "features.inception4e.branch1",  # 528
    "features.inception4e.branch2.0",
    "features.inception4e.branch3.0",
    "features.inception4e.branch4.1",
    "features.inception5b.branch3.1",  # 48
}


def test_only_reference_kernel_batchnorm_backward_passes_are_read():
    log = "\n".join([
        "dnnl_verbose,exec,cpu,batch_normalization,bnorm_ref:any,backward,data_bf16::blocked:aBcd16b:f0 "
        "diff_bf16::blocked:acdb:f0,,flags:S,mb32ic160ih14iw14,84.6",
        "dnnl_verbose,exec,cpu,batch_normalization,bnorm_ref:any,backward,data_bf16::blocked:acdb:f0,,flags:S,"
        "mb2ic16ih7iw7,1.0",
        # a vectorised backward, a reference forward, another primitive, a creation line: not wanted
        "dnnl_verbose,exec,cpu,batch_normalization,bnorm_jit:avx512_core_bf16,backward,data,,flags:S,mb32ic32ih14iw14,0.2",
        "dnnl_verbose,exec,cpu,batch_normalization,bnorm_ref:any,forward_training,data,,flags:S,mb32ic96ih14iw14,3.0",
        "dnnl_verbose,exec,cpu,convolution,ref:any,backward_data,src,,alg,mb32ic24ih14iw14,1.0",
        "dnnl_verbose,create:cache_miss,cpu,batch_normalization,bnorm_ref:any,backward,data,,flags:S,mb1ic8ih2iw2,0.1",
        "some other output, with commas",
    ])  # fmt: skip
    assert reference_norm_shapes(log) == {(160, 14, 14), (16, 7, 7)}


def test_convbn_shapes_and_flags_address_blocks_by_structural_path():
    net = googlenet(classes=10)  # initialised
    shapes = convbn_output_shapes(net, 64)
    assert len(shapes) == 57 and shapes["features.conv1"] == (64, 32, 32)
    assert shapes["features.inception4e.branch2.0"] == (160, 4, 4)
    assert keep_norms_float32(net, sorted(MIXED_ON_AMX)) == 4
    flagged = {path for path, block in amx.convbn_blocks(net) if block.norm_in_float32}
    assert flagged == MIXED_ON_AMX
    with pytest.raises(KeyError, match="no ConvBN block at features.nothing"):
        keep_norms_float32(net, ["features.nothing"])
    assert set(pad_inputs_for_amx(net)) == UNEVEN_INPUTS
    blocks = dict(amx.convbn_blocks(net))
    assert blocks["features.inception4e.branch1"].pad_input_to == 544
    assert blocks["features.inception4d.branch2.1"].pad_input_to == 160
    assert blocks["features.inception4a.branch2.0"].pad_input_to is None  # 480 = 15 x 32


_NUMERICS = textwrap.dedent("""
    import json, sys
    from gluon_inception._compat import amp, mx
    amp.init(target_dtype="bfloat16")
    from gluon_inception.models.blocks import Inception

    def run(flag):
        mx.random.seed(0)
        block = Inception(40, 16, 16, 32, 8, 16, 16, third_kernel=3)
        block.initialize(mx.init.Xavier())
        block.branch1.norm_in_float32 = flag  # its output goes straight into the concat
        block.branch2[0].norm_in_float32 = flag  # its output goes into another convolution
        block.branch3[0].pad_input_to = 64 if flag else None  # reads 40 channels as 64
        block.hybridize(static_alloc=True, static_shape=True)
        x = mx.nd.random.uniform(shape=(4, 40, 8, 8), ctx=mx.cpu())
        with mx.autograd.record():
            out = block(x)
            loss = (out.astype("float32") ** 2).mean()
        loss.backward()
        grads = {k: p.grad().asnumpy().ravel().tolist() for k, p in block._collect_params_with_prefix().items()
                 if p.grad_req != "null"}
        return str(out.dtype), out.astype("float32").asnumpy().ravel().tolist(), grads

    print(json.dumps([run(False), run(True)]))
""")


def test_float32_norms_and_padded_inputs_compute_what_plain_bfloat16_does():
    require_cpu(cpu.supports_bf16(), "AVX-512 BF16 or AMX-BF16 (bfloat16 training)")
    proc = subprocess.run([sys.executable, "-c", _NUMERICS], capture_output=True, text=True, env=child_env(),
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    import numpy as np

    (dtype0, out0, grads0), (dtype1, out1, grads1) = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "bfloat16" in dtype0 and dtype1 == dtype0  # the concat got one dtype from every branch
    np.testing.assert_allclose(out1, out0, rtol=0.05, atol=0.05)
    assert sorted(grads1) == sorted(grads0)
    for name in grads0:
        scale = max(np.abs(grads0[name]).max(), 1e-6)
        assert np.abs(np.subtract(grads1[name], grads0[name])).max() <= 0.1 * scale, name


@pytest.mark.slow
def test_probe_finds_the_mixed_layout_norms_with_amx_switched_on_and_none_without(monkeypatch):
    require_cpu(cpu.supports_bf16(), "AVX-512 BF16 or AMX-BF16 (bfloat16 training)")
    kwargs = {"classes": 10, "topology": "gluoncv"}
    monkeypatch.setenv(cpu.AMX_SWITCH, "1")  # the probe's child inherits it and switches AMX on
    unpadded = find_reference_norms("googlenet", kwargs, 2, 64, pad_inputs=False)
    padded = find_reference_norms("googlenet", kwargs, 2, 64)
    if cpu.amx_in_use():  # this CPU has AMX and no cap below it
        assert MIXED_ON_AMX <= set(unpadded), unpadded
        # a 32-channel 4x4 output also fits 4d's reduction, and 160 channels 4b's 1x1 branch
        assert set(unpadded) - MIXED_ON_AMX <= {"features.inception4d.branch3.0", "features.inception4b.branch1"}
        assert MIXED_ON_AMX_PADDED <= set(padded) and len(padded) < len(unpadded), padded
    else:  # the switch on a CPU without AMX changes nothing
        assert unpadded == [] and padded == []
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX512_CORE_BF16")  # a cap below AMX wins over the switch
    assert find_reference_norms("googlenet", kwargs, 2, 64, pad_inputs=False) == []
    monkeypatch.delenv("DNNL_MAX_CPU_ISA")
    monkeypatch.delenv(cpu.AMX_SWITCH)  # the default: no AMX
    assert find_reference_norms("googlenet", kwargs, 2, 64, pad_inputs=False) == []


def test_a_failing_probe_raises_with_the_childs_error():
    with pytest.raises(LayoutProbeError, match="failed with exit status 1: .*no_such_model"):
        find_reference_norms("no_such_model", {}, 2, 64)
