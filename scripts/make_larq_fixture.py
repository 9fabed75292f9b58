"""Train a tiny Larq BNN on the 8x8 digits and export it with tf2onnx: a test fixture.

Writes ``tests/fixtures/larq_digits_cnn.onnx`` (what tf2onnx makes of a Larq model: NHWC
input, Transposes around the convolutions, ``Sign(Sign(x) + 0.1)`` for ``ste_sign``,
BatchNorm as Mul + Add, a trailing Softmax) and ``tests/fixtures/larq_digits_cnn.npz``
(64 test frames and Keras' own class for each, a second oracle beside onnxruntime).

Larq needs TensorFlow <= 2.15 and numpy < 2, so it lives in its own venv, not bnnhw's:

    python3.11 -m venv /tmp/larqenv
    /tmp/larqenv/bin/pip install "tensorflow-cpu==2.15.*" larq tf2onnx "numpy<2" \\
        "onnx==1.16.2" "scikit-learn<1.6"
    /tmp/larqenv/bin/python scripts/make_larq_fixture.py

(onnx 1.16: tf2onnx pulls onnx 1.19, which needs an ml_dtypes newer than TF 2.15 allows.)
Seen working with tensorflow-cpu 2.15.1, larq 0.14.0, tf2onnx 1.17.0, numpy 1.26.4.
The run is seeded, but TF's training is not bit-reproducible across machines; the test
checks the committed file, not a re-run.
"""

from __future__ import annotations

from pathlib import Path

import larq as lq
import numpy as np
import tensorflow as tf
import tf2onnx
from sklearn.datasets import load_digits

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
BINARY = dict(
    input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip"
)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """Images NHWC (N, 8, 8, 1) = pixels / 16 in [0, 1], as bnnhw's digits (NCHW) are."""
    d = load_digits()
    return (d.images.astype(np.float32) / np.float32(16)).reshape(-1, 8, 8, 1), d.target


def model() -> tf.keras.Model:
    """Conv 3x3 (16) -> max-pool 2 -> BN -> conv 2x2 (16) -> BN -> dense 10 -> softmax.

    The first layer's ``ste_sign`` binarizes ``x - 0.5``: a pixel is +1 from 8/16 up. The
    last layer has neither a bias nor a BatchNorm: both shift or scale each class by its
    own float, which integer scores cannot rank exactly (bnnhw refuses that, by layer).
    """
    x = tf.keras.Input((8, 8, 1))
    y = tf.keras.layers.Rescaling(1.0, offset=-0.5)(x)
    y = lq.layers.QuantConv2D(16, 3, use_bias=False, **BINARY)(y)
    y = tf.keras.layers.MaxPool2D(2)(y)
    y = tf.keras.layers.BatchNormalization(scale=False)(y)
    y = lq.layers.QuantConv2D(16, 2, use_bias=False, **BINARY)(y)
    y = tf.keras.layers.BatchNormalization(scale=False)(y)
    y = tf.keras.layers.Flatten()(y)
    y = lq.layers.QuantDense(10, use_bias=False, **BINARY)(y)
    return tf.keras.Model(x, tf.keras.layers.Activation("softmax")(y))


def main() -> None:
    tf.keras.utils.set_random_seed(0)
    x, y = digits()
    order = np.random.default_rng(0).permutation(len(x))
    test, train = order[:64], order[64:]
    net = model()
    net.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    net.fit(x[train], y[train], epochs=80, batch_size=64, verbose=0)
    _, accuracy = net.evaluate(x[test], y[test], verbose=0)
    spec = (tf.TensorSpec((None, 8, 8, 1), tf.float32, name="x"),)
    onnx_model, _ = tf2onnx.convert.from_keras(net, input_signature=spec, opset=13)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "larq_digits_cnn.onnx"
    path.write_bytes(onnx_model.SerializeToString())
    keras_class = np.argmax(net.predict(x[test], verbose=0), axis=1)
    pixels = np.round(x[test] * 16).astype(np.uint8)  # exact: digits are multiples of 1/16
    np.savez_compressed(OUT / "larq_digits_cnn.npz", pixels16=pixels, keras_class=keras_class)
    print(f"{path}: {path.stat().st_size} bytes, Keras test accuracy {accuracy:.3f} (64 frames)")


if __name__ == "__main__":
    main()
