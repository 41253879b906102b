"""An encoder's forward pass on the CPU through OpenVINO (``--cpu-runtime openvino``), in fp32.

On this project's 2-core AVX2 CPU, OpenVINO runs multilingual-e5-small on bench's length-sorted batches of 2,048
padded tokens 1.26x faster than torch's SDPA path, with vectors equal to float rounding (cosine > 0.9999998), and
1.62x faster than the 8,192-token batches of before (``benchmarks/results/encode_backends.txt``). It is an optional
extra (``pip install -e ".[openvino]"``: 180 MB installed), so torch stays the default.

The model is converted from PyTorch once per process (dynamic batch and length, so one compiled model serves every
batch shape) and compiled for the CPU with the inference precision pinned to f32: on a CPU with native bf16 OpenVINO
would otherwise choose bf16, and a CPU-made artifact must be the same whichever CPU made it. Nothing here knows what
the hidden states mean: the caller pools them.
"""

from __future__ import annotations

import logging

from bench.errors import BenchError
from bench.infra import library_output

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install -e ".[openvino]" or pip install openvino, or use --cpu-runtime torch'


def require() -> str:
    """OpenVINO's version; a one-line error saying how to install it when it is absent."""
    try:
        import openvino
    except ImportError:
        raise BenchError("--cpu-runtime openvino asked for, but OpenVINO is not installed", INSTALL_HINT) from None
    return openvino.get_version().split("-")[0]


def last_hidden(net):
    """``net`` (a transformers encoder) as a module of ``(input_ids, attention_mask)`` returning its last hidden
    states: what is exported or converted to another runtime."""
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, input_ids, attention_mask):
            return self.net(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return LastHidden().eval()


_COMPILED: dict[tuple, tuple] = {}  # (id of the torch model, threads) -> (the model, kept alive; its compiled form)


def forward(net, threads: int):
    """A function ``(input_ids, attention_mask) -> last hidden states`` (torch tensors in, a float32 torch tensor
    out) running ``net`` through OpenVINO fp32 on ``threads`` CPU threads; converted and compiled once per model
    and thread count in this process."""
    import torch

    require()
    import openvino as ov

    key = (id(net), threads)
    if key not in _COMPILED:
        log.info("converting the encoder to OpenVINO (fp32, %d threads)", threads)
        example = (torch.ones((2, 8), dtype=torch.long), torch.ones((2, 8), dtype=torch.long))
        with library_output.captured(library_output.Captured(), "OpenVINO's conversion"):  # the tracer's warnings
            converted = ov.convert_model(last_hidden(net), example_input=example)
            settings = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads}
            _COMPILED[key] = (net, ov.compile_model(converted, "CPU", settings))
    compiled = _COMPILED[key][1]

    def run(input_ids, attention_mask):
        hidden = compiled((input_ids.numpy(), attention_mask.numpy()))[0]
        return torch.from_numpy(hidden)

    return run
