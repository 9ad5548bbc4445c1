"""Reproduce MXNet 1.9.1's INT8 calibration failure in one process, then calibrate with ours.

MXNet's naive calibration (``quantize_net`` / ``quantize_net_v2``) reads every calibrated layer's
output in a ctypes monitor callback with ``mx.nd.min``/``mx.nd.max``. After this process has run
the same float32 model in other ways first (a 10-crop evaluation with plain ``hybridize()``,
calls at batch sizes 1, 3 and 2, then a ``static_alloc`` evaluation at batch 50), the classifier's
output (``sg_mkldnn_fully_connected_0_output``) arrives in a oneDNN layout that those generic
operators cannot read ("We can't generate TBlob for MKLDNN data"). The exception dies in the
callback (Python prints "Exception ignored"), the layer gets no statistics, and
``quantize_net_v2`` returns a model anyway. With ``MXNET_MKLDNN_CACHE_NUM=1`` (oneDNN primitive
cache of one entry) the same sequence does not fail, so the cached FullyConnected primitives
built for the earlier shapes take part.

Usage (about a minute on 2 cores; trains the demo model first when no checkpoint is given)::

    python bench/int8_calibration_repro.py [--checkpoint demo-0003.params --data DEMO_ROOT]

Prints the layers whose statistics MXNet's collector lost, then the top-1 of the float32 network
and of ``quantize_int8`` (which reads the outputs as graph outputs, no callback) in the same state.
Exit status 0 when MXNet's collector failed and ours matched float32 within half a point.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "tests"), os.path.join(HERE, "..")]


def _trigger(info, checkpoint):
    """The in-process MXNet work that leaves the state behind (tests/test_cli_deploy.py does it)."""
    from gluon_inception._compat import mx
    from gluon_inception.deploy.evaluate import evaluate
    from gluon_inception.zoo import load_checkpoint_model

    model = load_checkpoint_model(checkpoint)
    model.net.hybridize()
    evaluate(model.net, info.split("val"), model.preprocessing, crops=(1, 10))
    side = model.preprocessing.crop_size
    for n in (1, 1, 1, 3, 2):
        model.net(mx.nd.random.normal(shape=(n, 3, side, side))).asnumpy()
    again = load_checkpoint_model(checkpoint)
    again.net.hybridize(static_alloc=True, static_shape=True)
    evaluate(again.net, info.split("test"), again.preprocessing, batch_size=50)


def stock_calibration_failures(net, data):
    """Run MXNet's own naive calibration; return the (layer, error) pairs its collector swallowed."""
    from mxnet.contrib import quantization

    from gluon_inception._compat import mx

    lost, real = [], quantization._LayerOutputMinMaxCollector.collect

    def spy(self, name, arr):
        try:
            real(self, name, arr)
        except Exception as err:
            lost.append((mx.base.py_str(name), str(err).strip().splitlines()[-1][:100]))
            raise

    quantization._LayerOutputMinMaxCollector.collect = spy
    hook, sys.unraisablehook = sys.unraisablehook, lambda unraisable: None
    try:
        it = mx.io.NDArrayIter(data=data, batch_size=32, data_name="data")
        quantization.quantize_net_v2(net, quantize_mode="full", calib_data=it, calib_mode="naive",
                                     num_calib_examples=data.shape[0], ctx=mx.cpu(), quantized_dtype="auto")
    finally:
        quantization._LayerOutputMinMaxCollector.collect = real
        sys.unraisablehook = hook
    return lost


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint")
    parser.add_argument("--data", help="demo dataset root (prepared at 32 px)")
    args = parser.parse_args()
    import deploy_support  # tests/: the demo dataset and model the tests use

    from gluon_inception.data import build_val_iter, load_dataset
    from gluon_inception.deploy.evaluate import evaluate
    from gluon_inception.deploy.quantize import collect_calibration_data, quantize_int8
    from gluon_inception.zoo import load_checkpoint_model

    info = load_dataset(args.data) if args.data else deploy_support.demo_dataset()
    checkpoint = args.checkpoint or deploy_support.trained_demo_checkpoint()
    _trigger(info, checkpoint)
    model = load_checkpoint_model(checkpoint)
    model.net.hybridize(static_alloc=True, static_shape=True)
    pre = model.preprocessing
    batches = build_val_iter(info.split("train"), 32, data_shape=pre.data_shape, resize=pre.resize, mean=pre.mean,
                             std=pre.std, num_threads=2)
    data = collect_calibration_data(batches, 3)
    lost = stock_calibration_failures(model.net, data)
    print("MXNet's collector lost %d layer reads: %s" % (len(lost), sorted(set(lost))))
    fp32 = evaluate(model.net, info.split("test"), model.preprocessing, batch_size=50)[1]
    qnet = quantize_int8(model.net, data)
    int8 = evaluate(qnet, info.split("test"), model.preprocessing, batch_size=50)[1]
    print("same process, quantize_int8: float32 top-1 %.4f, INT8 top-1 %.4f" % (fp32.top1, int8.top1))
    return 0 if lost and abs(int8.top1 - fp32.top1) <= 0.005 else 1


if __name__ == "__main__":
    sys.exit(main())
