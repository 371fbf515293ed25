"""A1111 prompt syntax: parsing, weighted chunked encoding against hand-computed embeddings."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from craftlora.generate.prompts import PromptSyntaxError, find_lora_files, parse_prompt
from craftlora.models.loader import Components
from craftlora.models.prompt_weights import match_lengths, parse_emphasis
from craftlora.models.text import encode_prompts
from craftlora.models.tiny import BASE_CORPUS, TinySpec, build_unet
from craftlora.models.tokenizer import build_clip_tokenizer, load_clip_tokenizer

W = 1.1


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    return load_clip_tokenizer(build_clip_tokenizer([BASE_CORPUS], d, vocab_size=700,
                                                    max_length=77))


def _clip(tok, cls=CLIPTextModel, seed=0):
    torch.manual_seed(seed)
    cfg = CLIPTextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, projection_dim=16)
    enc = cls(cfg).eval()
    with torch.no_grad():  # a trained CLIP's final norm has a bias; a fresh one averages to 0
        getattr(enc, "text_model", enc).final_layer_norm.bias.normal_(0.2, 0.1)
    return enc.requires_grad_(False)


@pytest.fixture(scope="module")
def comp(tok):
    return Components(unet=None, vae=None, text_encoder=_clip(tok), tokenizer=tok,
                      noise_scheduler=None)


def _plain(tok, enc, ids: list[int]) -> torch.Tensor:
    """Hand-built chunk: BOS + ids + EOS + padding through the encoder's last layer."""
    row = [tok.bos_token_id, *ids, tok.eos_token_id]
    row += [tok.pad_token_id] * (77 - len(row))
    with torch.no_grad():
        return enc(torch.tensor([row]))[0][0]


def _ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False, verbose=False).input_ids


@pytest.mark.parametrize("text, expected", [
    ("a (red:1.5) vase", [[("a ", 1.0), ("red", 1.5), (" vase", 1.0)]]),
    ("(red)", [[("red", W)]]),
    ("((red))", [[("red", W * W)]]),
    ("[red]", [[("red", 1 / W)]]),
    ("[[red]]", [[("red", 1 / W / W)]]),
    ("(a (b:2) [c])", [[("a ", W), ("b", 2 * W), (" ", W), ("c", 1.0)]]),
    (r"\(red\) \[x\] a\\b", [[(r"(red) [x] a\b", 1.0)]]),
    ("(open ended", [[("open ended", W)]]),
    ("stray) and] x:1.2)", [[("stray) and] x:1.2)", 1.0)]]),
    ("(a:1.2.3)", [[("a:1.2.3", W)]]),
    ("a BREAK b", [[("a", 1.0)], [("b", 1.0)]]),
    ("BREAKING BREAK", [[("BREAKING", 1.0)], []]),
    ("", [[]]),
])
def test_parse_emphasis(text, expected):
    got = parse_emphasis(text)
    assert [[s for s, _ in seg] for seg in got] == [[s for s, _ in seg] for seg in expected]
    for g, e in zip(got, expected, strict=True):
        assert [w for _, w in g] == pytest.approx([w for _, w in e], abs=1e-12)


def test_parse_matches_a1111s_documented_cases():
    """The examples A1111's own documentation of its parser gives, with its figures."""
    text = "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky)))."
    assert parse_emphasis(text) == [[
        ("a ", 1.0), ("house", pytest.approx(1.573)), (" ", pytest.approx(1.1)), ("on", 1.0),
        (" a ", pytest.approx(1.1)), ("hill", pytest.approx(0.55)),
        (", sun, ", pytest.approx(1.1)), ("sky", pytest.approx(1.4641)),
        (".", pytest.approx(1.1))]]
    assert parse_emphasis("(unnecessary)(parens)") == [[("unnecessaryparens", pytest.approx(W))]]


def test_plain_prompt_is_unchanged_by_the_weighted_path(comp):
    plain = encode_prompts(comp, ["a red vase", "blue bowl"], weighted=False)["hidden"]
    weighted = encode_prompts(comp, ["a red vase", "blue bowl"], weighted=True)["hidden"]
    assert weighted.shape == (2, 77, 32)
    assert torch.equal(plain, weighted)


@pytest.mark.parametrize("prompt, weight", [("a (red:1.5) vase", 1.5), ("a [red] vase", 1 / W),
                                            ("a ((red)) vase", W * W)])
def test_emphasis_against_hand_computed_embeddings(tok, comp, prompt, weight):
    ids = _ids(tok, "a red vase")
    red = _ids(tok, "red")
    z = _plain(tok, comp.text_encoder, ids)
    w = torch.ones(77)
    start = 1 + len(_ids(tok, "a"))
    w[start:start + len(red)] = weight
    expected = z * w[:, None]
    expected = expected * (z.mean() / expected.mean())
    got = encode_prompts(comp, [prompt], weighted=True)["hidden"][0]
    assert torch.allclose(got, expected, atol=1e-6)
    assert not torch.allclose(got, z, atol=1e-3)  # the weight did something
    assert got.mean().item() == pytest.approx(z.mean().item(), abs=1e-6)


def test_150_token_prompt_is_two_chunks(tok, comp):
    words = [w for w in BASE_CORPUS.split() if len(_ids(tok, w)) == 1][:10]
    text = " ".join(words[i % 10] for i in range(150))
    ids = _ids(tok, text)
    assert len(ids) == 150
    got = encode_prompts(comp, [text], weighted=True)["hidden"]
    assert got.shape == (1, 154, 32)
    assert torch.allclose(got[0, :77], _plain(tok, comp.text_encoder, ids[:75]), atol=1e-6)
    assert torch.allclose(got[0, 77:], _plain(tok, comp.text_encoder, ids[75:]), atol=1e-6)
    cut = encode_prompts(comp, [text], weighted=False)["hidden"]  # the literal path truncates
    assert cut.shape == (1, 77, 32)


def test_full_chunk_moves_the_words_after_its_last_comma(tok, comp):
    words = [w for w in BASE_CORPUS.split() if len(_ids(tok, w)) == 1][:10]
    head = " ".join(words[i % 10] for i in range(70))
    tail = " ".join(words[i % 10] for i in range(10))
    ids_head, ids_tail = _ids(tok, head + ","), _ids(tok, tail)
    assert (len(ids_head), len(ids_tail)) == (71, 10)
    got = encode_prompts(comp, [f"{head}, {tail}"], weighted=True)["hidden"][0]
    assert got.shape == (154, 32)  # 71 + 10 tokens: the comma's chunk is padded, not cut at 75
    assert torch.allclose(got[:77], _plain(tok, comp.text_encoder, ids_head), atol=1e-6)
    assert torch.allclose(got[77:], _plain(tok, comp.text_encoder, ids_tail), atol=1e-6)
    far = " ".join(words[i % 10] for i in range(50))  # comma 25 tokens back: a plain cut
    ids = _ids(tok, f"{far}, {head}")
    got = encode_prompts(comp, [f"{far}, {head}"], weighted=True)["hidden"][0]
    assert torch.allclose(got[:77], _plain(tok, comp.text_encoder, ids[:75]), atol=1e-6)


def test_trailing_break_adds_no_chunk(comp):
    a = encode_prompts(comp, ["a red vase BREAK"], weighted=True)["hidden"]
    b = encode_prompts(comp, ["a red vase"], weighted=True)["hidden"]
    assert torch.equal(a, b)


def test_break_starts_a_new_chunk(tok, comp):
    got = encode_prompts(comp, ["a red vase BREAK (blue:1.2) bowl"], weighted=True)["hidden"][0]
    assert got.shape == (154, 32)
    assert torch.allclose(got[:77], _plain(tok, comp.text_encoder, _ids(tok, "a red vase")),
                          atol=1e-6)
    z = _plain(tok, comp.text_encoder, _ids(tok, "blue bowl"))
    w = torch.ones(77)
    w[1:1 + len(_ids(tok, "blue"))] = 1.2
    ref = z * w[:, None]
    assert torch.allclose(got[77:], ref * (z.mean() / ref.mean()), atol=1e-6)


def test_escaped_brackets_are_literal_text(comp):
    esc = encode_prompts(comp, [r"a \(red\) vase"], weighted=True)["hidden"]
    lit = encode_prompts(comp, ["a (red) vase"], weighted=False)["hidden"]
    assert torch.equal(esc, lit)


def test_batch_of_unequal_lengths_repeats_whole_contexts(tok, comp):
    long = " ".join(["red vase"] * 50)
    both = encode_prompts(comp, ["blue bowl", long], weighted=True)["hidden"]
    alone = encode_prompts(comp, ["blue bowl"], weighted=True)["hidden"]
    assert both.shape[1] == 154
    assert torch.allclose(both[0, :77], alone[0], atol=1e-6)
    assert torch.allclose(both[0, 77:], alone[0], atol=1e-6)


def test_repeated_context_gives_the_same_unet_output():
    """Why ``match_lengths`` repeats instead of padding: cross-attention is unchanged."""
    spec = TinySpec()
    torch.manual_seed(0)
    unet = build_unet(spec).eval()
    x = torch.randn(1, 4, spec.latent_size, spec.latent_size)
    ctx = torch.randn(1, 16, spec.text_width)
    other = torch.randn(1, 32, spec.text_width)
    a, b = match_lengths(ctx, other)
    assert a.shape[1] == b.shape[1] == 32 and b is other
    with torch.no_grad():
        once = unet(x, 10, ctx).sample
        twice = unet(x, 10, a).sample
    assert torch.allclose(once, twice, atol=1e-5)


def test_sdxl_two_encoders_and_pooled_from_first_chunk(tok):
    e1, e2 = _clip(tok, seed=1), _clip(tok, CLIPTextModelWithProjection, seed=2)
    comp = Components(unet=None, vae=None, text_encoder=e1, tokenizer=tok,
                      noise_scheduler=None, kind="sdxl", text_encoder_2=e2, tokenizer_2=tok)
    text = "a (red:1.4) vase BREAK blue bowl"
    got = encode_prompts(comp, [text], weighted=True)
    assert got["hidden"].shape == (1, 154, 64)
    ids = _ids(tok, "a red vase")
    row = torch.tensor([[tok.bos_token_id, *ids, tok.eos_token_id]
                        + [tok.pad_token_id] * (75 - len(ids))])
    w = torch.ones(77)
    w[1 + len(_ids(tok, "a")):1 + len(ids) - len(_ids(tok, "vase"))] = 1.4
    parts = []
    with torch.no_grad():
        for enc in (e1, e2):
            z = enc(row, output_hidden_states=True).hidden_states[-2][0]
            ref = z * w[:, None]
            parts.append(ref * (z.mean() / ref.mean()))
        pooled = e2(row)[0][0]
    assert torch.allclose(got["hidden"][0, :77], torch.cat(parts, dim=-1), atol=1e-6)
    assert torch.allclose(got["pooled"][0], pooled, atol=1e-6)


def test_lora_names_with_spaces_and_no_escape(tmp_path):
    p = parse_prompt("a vase <lora:my lora:0.5>, (glossy:1.2)")
    assert [(r.name, r.unet, r.te) for r in p.loras] == [("my lora", 0.5, 0.5)]
    assert p.text == "a vase, (glossy:1.2)"
    (tmp_path / "my lora.safetensors").write_bytes(b"")
    assert find_lora_files(p.loras, [tmp_path]) == {"my lora": tmp_path / "my lora.safetensors"}
    for bad in ("<lora:..:1>", "<lora: :1>", "<lora:a/b:1>"):
        with pytest.raises(PromptSyntaxError):
            parse_prompt(bad)


def test_long_prompt_and_short_negative_generate(tmp_path):
    """A pipeline takes a 3-chunk prompt with a 1-chunk negative (``prompt_embeds``)."""
    from craftlora.models.text import encode_text, prompt_embeds
    from craftlora.models.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline(TinySpec(), seed=0, workdir=tmp_path)  # 16 tokens: 14 per chunk
    text = ", ".join(["a red vase on a blue plate"] * 5) + " BREAK (glossy:1.3) bowl"
    alone = encode_text(pipe, [text], None)
    assert alone.shape[1] % 16 == 0 and alone.shape[1] >= 48
    kw = prompt_embeds(pipe, [text], ["low quality"], None)
    assert torch.equal(kw["prompt_embeds"], alone)
    neg = kw["negative_prompt_embeds"]
    assert neg.shape == alone.shape
    short = encode_text(pipe, ["low quality"], None)
    assert torch.equal(neg, short.repeat(1, neg.shape[1] // 16, 1))
    out = pipe(**kw, num_inference_steps=2, generator=torch.Generator().manual_seed(0),
               output_type="np").images
    assert out.shape == (1, 32, 32, 3) and bool((out == out).all())
    captions = prompt_embeds(pipe, [text], ["low quality"], None, weighted=False)
    assert captions["prompt_embeds"].shape[1] == 16  # a training caption: cut at one chunk
    literal = encode_text(pipe, [text], None, weighted=False)
    assert torch.equal(captions["prompt_embeds"], literal)


def test_sdxl_pipeline_takes_a_long_weighted_prompt(tmp_path):
    from tiny_families import build_family

    from craftlora.models.text import prompt_embeds

    pipe, _ = build_family("sdxl", tmp_path)  # 16-token tokenizers: 14 tokens a chunk
    text = ", ".join(["a red vase on a blue plate"] * 4) + " BREAK (glossy:1.3) bowl"
    kw = prompt_embeds(pipe, [text], ["low quality"], None)
    n = kw["prompt_embeds"].shape[1]
    assert n >= 48 and n % 16 == 0 and kw["negative_prompt_embeds"].shape[1] == n
    assert kw["pooled_prompt_embeds"].shape == kw["negative_pooled_prompt_embeds"].shape
    plain = prompt_embeds(pipe, [text.replace("(glossy:1.3)", "glossy")], ["low quality"], None)
    assert not torch.allclose(kw["prompt_embeds"], plain["prompt_embeds"])  # the weight acts
    assert torch.equal(kw["pooled_prompt_embeds"], plain["pooled_prompt_embeds"])  # chunk 1 only
    out = pipe(**kw, num_inference_steps=2, height=32, width=32, output_type="np",
               generator=torch.Generator().manual_seed(0)).images
    assert out.shape == (1, 32, 32, 3) and bool((out == out).all())
