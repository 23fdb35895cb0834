import embstore
import torch

# The notebook's table, made without PyTorch: torch.manual_seed(123); nn.Embedding(6, 4)
embstore.generate(6, 4, seed=123, path="notebook.emb")

t = embstore.open("notebook.emb")  # instant at any size: only the header is read
print(t.shape, t.dtype)            # (6, 4) float32
print(t[3])                        # token 3: [ 1.8959674 -0.1750409  1.3689082 -1.6032702]

torch.manual_seed(123)
embedding = torch.nn.Embedding(6, 4)
print(embedding(torch.tensor([3])))
assert torch.equal(torch.from_numpy(t[3]), embedding.weight[3].detach())

# The whole table, zero-copy, as PyTorch weights (read-only: freeze=True).
weights = torch.from_numpy(t.array)  # warns that the mapping is not writable
frozen = torch.nn.Embedding.from_pretrained(weights, freeze=True)
assert torch.equal(frozen(torch.tensor([3])), embedding(torch.tensor([3])))
