"""bfloat16 training on AMX (training/amx.py): which convolutions read zero-padded inputs, and that
the padding computes what plain bfloat16 does.

AMP patches MXNet for the rest of a process, so every bfloat16 computation here runs in a child.
"""
import json
import subprocess
import sys
import textwrap

import pytest

from gluon_inception import cpu, googlenet
from gluon_inception.training import amx
from gluon_inception.training.amx import pad_inputs_for_amx, prepare_network
from tests.support import child_env
from tests.support.cpus import require_cpu

# Results depend on the CPU's instruction sets: .ci/run runs these again under DNNL_MAX_CPU_ISA=AVX2 and with AMX on.
pytestmark = pytest.mark.isa

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


def test_inputs_of_uneven_channel_counts_are_padded_to_multiples_of_32_by_structural_path():
    net = googlenet(classes=10)  # initialised
    blocks = dict(amx.convbn_blocks(net))
    assert len(blocks) == 57
    assert set(pad_inputs_for_amx(net)) == UNEVEN_INPUTS
    assert blocks["features.inception4e.branch1"].pad_input_to == 544
    assert blocks["features.inception4d.branch2.1"].pad_input_to == 160
    assert blocks["features.inception4a.branch2.0"].pad_input_to is None  # 480 = 15 x 32
    assert {path for path, block in blocks.items() if block.pad_input_to} == UNEVEN_INPUTS


def test_prepare_network_pads_only_the_network_that_trains():
    net = googlenet(classes=10)
    assert prepare_network(net, 64, pad=False) == []
    assert not any(block.pad_input_to for _, block in amx.convbn_blocks(net))
    assert set(prepare_network(net, 64)) == UNEVEN_INPUTS


_NUMERICS = textwrap.dedent("""
    import json, sys
    from gluon_inception._compat import amp, mx
    amp.init(target_dtype="bfloat16")
    from gluon_inception.models.blocks import Inception

    def run(flag):
        mx.random.seed(0)
        block = Inception(40, 16, 16, 32, 8, 16, 16, third_kernel=3)
        block.initialize(mx.init.Xavier())
        block.branch1.pad_input_to = 64 if flag else None  # its output goes straight into the concat
        block.branch3[0].pad_input_to = 64 if flag else None  # its output goes into another convolution
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


def test_padded_inputs_compute_what_plain_bfloat16_does():
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
