"""Pick precision, gradient checkpointing and LoRA from the backbone's size and the memory of the device it trains on.

What a config leaves on "auto" is settled here, once per run, and recorded with the version (its ``resolved``
settings), so a version says how it was trained, not only what was asked for. The arithmetic is the usual one for
AdamW: full fine-tuning holds about 16 bytes per parameter (fp32 weights, gradients and two moments); with LoRA the
frozen weights take 2 bytes per parameter in bf16/fp16 (4 in fp32) and the adapters' state is negligible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

FULL_BYTES_PER_PARAM = 16
# Above this share of the GPU for weights and optimiser state, full fine-tuning leaves too little for activations.
FULL_SHARE = 0.5
CHECKPOINTING_SHARE = 0.25
CHECKPOINTING_PARAMS = 1_000_000_000
AUTO_LORA_R = 16
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class MemoryPlan:
    precision: str  # fp32 | bf16 | fp16 (fp16 with a gradient scaler)
    gradient_checkpointing: bool
    lora_r: int  # 0: full fine-tuning
    parameters: int
    device_memory_gib: float | None
    why: str

    def as_dict(self) -> dict:
        return asdict(self)


def plan(parameters: int, device_type: str, device_bytes: int | None, bf16_supported: bool, precision: str = "auto",
         gradient_checkpointing: bool | None = None, lora_r: int | None = 0) -> MemoryPlan:
    """Settle the "auto" settings (precision "auto", None for the others); explicit values are kept as given."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    reasons = []
    if precision == "auto":
        precision = "fp32" if device_type != "cuda" else ("bf16" if bf16_supported else "fp16")
        reasons.append(f"{precision} on {device_type}")
    elif precision != "fp32" and device_type != "cuda":
        raise ValueError(f"precision {precision} needs a CUDA device; this run is on {device_type}")
    full = FULL_BYTES_PER_PARAM * parameters
    on_gpu = device_type == "cuda" and device_bytes
    if lora_r is None:
        lora_r = AUTO_LORA_R if on_gpu and full > FULL_SHARE * device_bytes else 0
        reasons.append(f"LoRA r={lora_r}: full fine-tuning needs ~{full / 2**30:.1f} GiB of state"
                       if lora_r else "full fine-tuning fits")
    if gradient_checkpointing is None:
        state = full if not lora_r else parameters * (4 if precision == "fp32" else 2)
        gradient_checkpointing = bool(on_gpu and (state > CHECKPOINTING_SHARE * device_bytes
                                                  or parameters > CHECKPOINTING_PARAMS))
        reasons.append("gradient checkpointing " + ("on" if gradient_checkpointing else "off"))
    return MemoryPlan(precision, bool(gradient_checkpointing), int(lora_r), parameters,
                      round(device_bytes / 2**30, 1) if device_bytes else None, "; ".join(reasons))


def device_memory(device) -> int | None:
    import torch

    if device.type != "cuda":
        return None
    return torch.cuda.get_device_properties(device).total_memory
