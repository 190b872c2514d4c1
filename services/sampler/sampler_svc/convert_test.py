"""GetSamplerInfo for every kind of shipped checkpoint: each sampler a generator names has a
SamplerKind (a template or ion-exchange checkpoint once made GetSamplerInfo INTERNAL)."""

import pytest
from autoperi.sampler.v1 import sampler_pb2

from sampler_svc._convert import info_response
from sampler_svc._engine import load_engine
from sampler_svc._jobs import Limits


@pytest.mark.parametrize(
    ("checkpoint", "kind"),
    [
        ("checkpoints/perov_5_csp", sampler_pb2.SAMPLER_KIND_EULER),
        ("checkpoints/perov_5_csp_diffusion", sampler_pb2.SAMPLER_KIND_DDPM),
        ("checkpoints/perov_5_templates", sampler_pb2.SAMPLER_KIND_TEMPLATE),
        ("checkpoints/mp_20_ion_exchange", sampler_pb2.SAMPLER_KIND_ION_EXCHANGE),
    ],
)
def test_every_sampler_of_a_checkpoint_has_a_kind(checkpoint, kind):
    reply = info_response(load_engine(checkpoint).info, Limits(max_samples=8, max_atoms=20))
    assert kind in reply.samplers and reply.default_sampler in reply.samplers
