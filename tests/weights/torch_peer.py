"""Run by the torch interpreter (not by pytest): build torchvision googlenets with random weights,
save them exactly as torchvision publishes weights (``torch.save(model.state_dict(), path)``) and
write their eval-mode logits on the input ``x.npy``.

    python torch_peer.py OUT_DIR    (OUT_DIR holds x224.npy and x208.npy; gets *.pth and
                                     *_logits224.npy, *_logits208.npy)

At 208 pixels the map before the last pool is 13x13, where torchvision's ceil-mode pool differs
from GluonCV's floor-mode one, so the topology is checked, not just the weights.

Nothing here imports gluon_inception or MXNet: this interpreter has torch, which GluonCV refuses.
"""

import os
import sys

import numpy as np
import torch
from torchvision.models import googlenet


def calibrate_batchnorm(model, generator):
    """Running statistics measured on data (as after training), so the input matters to the output.

    With torchvision's init (weights of std 0.01) and made-up statistics the signal fades within a
    few layers, and logits would hardly depend on the input or on where each weight went.
    """
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batches
            module.weight.data.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
            module.bias.data.copy_(torch.rand(module.bias.shape, generator=generator) - 0.5)
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 160, 160, generator=generator))


def main(out):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    inputs = {size: torch.from_numpy(np.load(os.path.join(out, "x%d.npy" % size))) for size in (224, 208)}
    cases = {
        # Like the published IMAGENET1K_V1: aux heads in the file, transform_input on, legacy format.
        "published": dict(aux_logits=True, transform_input=True, legacy=True),
        # A plain training run: no aux heads, no input transform, the current zip format.
        "plain": dict(aux_logits=False, transform_input=False, legacy=False),
    }
    for name, case in cases.items():
        model = googlenet(
            weights=None, aux_logits=case["aux_logits"], transform_input=case["transform_input"], init_weights=True
        )
        calibrate_batchnorm(model, generator)
        model.eval()
        for size, x in inputs.items():
            with torch.no_grad():
                np.save(os.path.join(out, "%s_logits%d.npy" % (name, size)), model(x).numpy())
        torch.save(
            model.state_dict(), os.path.join(out, name + ".pth"), _use_new_zipfile_serialization=not case["legacy"]
        )
    # Tensors that are views (transposed, offset into a shared storage) and of several dtypes.
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    layouts = {
        "transposed": base.t(),
        "offset_view": base[1:3, 2:5],
        "float64": torch.linspace(-1, 1, 5, dtype=torch.float64),
        "int64": torch.tensor([3, -2, 7]),
        "bfloat16": torch.tensor([1.5, -2.0, 0.25], dtype=torch.bfloat16),
        "scalar": torch.tensor(5.5),
    }
    for legacy in (False, True):
        suffix = "legacy" if legacy else "zip"
        torch.save(layouts, os.path.join(out, "layouts_%s.pth" % suffix), _use_new_zipfile_serialization=not legacy)
    np.savez(os.path.join(out, "layouts.npz"), **{k: v.float().numpy() for k, v in layouts.items()})


if __name__ == "__main__":
    main(sys.argv[1])
