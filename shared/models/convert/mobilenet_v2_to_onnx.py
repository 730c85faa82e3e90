"""Convert torchvision's MobileNetV2 ImageNet weights (a legacy-format .pth) to ONNX.

    python mobilenet_v2_to_onnx.py mobilenet_v2-b0353104.pth mobilenet_v2.onnx

Run once by `cuepoint models install mobilenet-v2` with the models venv's Python, which has
`onnx` and `numpy` (no torch): the .pth is read with a restricted unpickler that only accepts
tensors of a state dict, and the graph is the standard torchvision MobileNetV2 written out node
by node. Weights are copied bit for bit (BatchNormalization stays a node; tract folds it), so
the output is the same bytes on every machine and its sha256 is pinned in the registry.

Graph: input `input` f32 [1,3,224,224] NCHW (RGB, ImageNet mean/std normalised), output
`logits` f32 [1,1000].
"""

import collections
import pickle
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

# (expansion t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper and
# torchvision.
INVERTED_RESIDUAL_SETTING = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]
BN_EPSILON = 1e-5
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64, "DoubleStorage": np.float64}


class _Storage:
    def __init__(self, dtype, key, numel):
        self.dtype, self.key, self.numel, self.data = dtype, key, numel, None


class _TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self):
        flat = self.storage.data
        itemsize = flat.itemsize
        return np.lib.stride_tricks.as_strided(
            flat[self.offset :], shape=self.size, strides=[s * itemsize for s in self.stride]
        ).copy()


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, *rest):
    return _TensorRef(storage, storage_offset, size, stride)


class _StorageType:
    def __init__(self, name):
        self.name = name


class _RestrictedUnpickler(pickle.Unpickler):
    """Accepts a state dict of tensors and nothing else (a .pth may hold any Python object)."""

    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from the weights file")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel = pid[:5]
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(DTYPES[storage_type.name], key, numel)
        return self.storages[key]


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_legacy_state_dict(path):
    """torch.save's legacy format: magic, protocol, sys info, the pickled object, the storage
    keys, then each storage as an int64 element count and its raw little-endian bytes."""
    with open(path, "rb") as f:
        if _PlainUnpickler(f).load() != LEGACY_MAGIC:
            raise ValueError(f"{path}: not a legacy torch.save file")
        if _PlainUnpickler(f).load() != 1001:
            raise ValueError(f"{path}: unsupported protocol version")
        sys_info = _PlainUnpickler(f).load()
        if not sys_info.get("little_endian", True):
            raise ValueError(f"{path}: big-endian weights")
        storages = {}
        state = _RestrictedUnpickler(f, storages).load()
        keys = _PlainUnpickler(f).load()
        for key in keys:
            s = storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            if numel != s.numel:
                raise ValueError(f"{path}: storage {key} has {numel} elements, expected {s.numel}")
            nbytes = numel * np.dtype(s.dtype).itemsize
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise ValueError(f"{path}: truncated storage {key}")
            s.data = np.frombuffer(raw, dtype=np.dtype(s.dtype).newbyteorder("<"))
        if f.read(1):
            raise ValueError(f"{path}: trailing bytes")
    return collections.OrderedDict((k, v.array()) for k, v in state.items())


class Graph:
    def __init__(self, weights):
        self.weights = weights
        self.nodes, self.initializers, self.used = [], [], set()
        self.count = 0

    def name(self, prefix):
        self.count += 1
        return f"{prefix}_{self.count}"

    def init(self, key):
        array = self.weights[key]
        if array.dtype != np.float32:
            raise ValueError(f"{key}: expected float32, got {array.dtype}")
        self.used.add(key)
        self.initializers.append(helper.make_tensor(key, TensorProto.FLOAT, array.shape, array.tobytes(), raw=True))
        return key

    def const(self, name, value):
        self.initializers.append(helper.make_tensor(name, TensorProto.FLOAT, [], [value]))
        return name

    def node(self, op, inputs, **attrs):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv_bn(self, x, conv, bn, stride, groups, relu6):
        w = self.weights[conv + ".weight"]
        k = w.shape[2]
        y = self.node(
            "Conv",
            [x, self.init(conv + ".weight")],
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[k // 2] * 4,
            group=groups,
        )
        y = self.node(
            "BatchNormalization",
            [y] + [self.init(f"{bn}.{p}") for p in ("weight", "bias", "running_mean", "running_var")],
            epsilon=BN_EPSILON,
        )
        if relu6:
            y = self.node("Clip", [y, "relu6_min", "relu6_max"])
        return y


def build(weights):
    g = Graph(weights)
    g.const("relu6_min", 0.0)
    g.const("relu6_max", 6.0)
    x = g.conv_bn("input", "features.0.0", "features.0.1", stride=2, groups=1, relu6=True)
    channels = weights["features.0.0.weight"].shape[0]
    index = 1
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        for i in range(n):
            stride = s if i == 0 else 1
            p = f"features.{index}.conv"
            hidden = channels * t
            y = x
            layer = 0
            if t != 1:
                y = g.conv_bn(y, f"{p}.0.0", f"{p}.0.1", stride=1, groups=1, relu6=True)
                layer = 1
            y = g.conv_bn(y, f"{p}.{layer}.0", f"{p}.{layer}.1", stride=stride, groups=hidden, relu6=True)
            y = g.conv_bn(y, f"{p}.{layer + 1}", f"{p}.{layer + 2}", stride=1, groups=1, relu6=False)
            if weights[f"{p}.{layer}.0.weight"].shape[0] != hidden or weights[f"{p}.{layer + 1}.weight"].shape[0] != c:
                raise ValueError(f"features.{index}: channels differ from MobileNetV2")
            if stride == 1 and channels == c:
                y = g.node("Add", [x, y])
            x, channels, index = y, c, index + 1
    x = g.conv_bn(x, f"features.{index}.0", f"features.{index}.1", stride=1, groups=1, relu6=True)
    x = g.node("GlobalAveragePool", [x])
    x = g.node("Flatten", [x], axis=1)
    g.nodes.append(
        helper.make_node("Gemm", [x, g.init("classifier.1.weight"), g.init("classifier.1.bias")], ["logits"], name="classifier", transB=1)
    )
    unused = [k for k in weights if k not in g.used and not k.endswith("num_batches_tracked")]
    if unused:
        raise ValueError(f"weights not used by the graph: {unused[:5]}")
    classes = weights["classifier.1.weight"].shape[0]
    graph = helper.make_graph(
        g.nodes,
        "mobilenet_v2",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph, producer_name="cuepoint mobilenet_v2_to_onnx.py", opset_imports=[helper.make_opsetid("", 13)]
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def main(argv):
    if len(argv) != 3:
        sys.exit(f"usage: {argv[0]} WEIGHTS.pth OUTPUT.onnx")
    weights = load_legacy_state_dict(argv[1])
    model = build(weights)
    with open(argv[2], "wb") as f:
        f.write(model.SerializeToString())


if __name__ == "__main__":
    main(sys.argv)
