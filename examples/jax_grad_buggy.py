"""JAX losses differentiated with jax.grad. Each `# BUG LLxxx` comment marks a line losslint must report."""

import jax
import jax.numpy as jnp


def bce_loss(params, x, labels):
    probs = model.apply(params, x)  # a Flax model ending in a sigmoid
    return -jnp.mean(labels * jnp.log(probs) + (1 - labels) * jnp.log(1 - probs))  # BUG LL101: probs reach 0 and 1


def logistic_loss(params, x, labels):
    margins = labels * (x @ params["w"] + params["b"])
    return jnp.mean(jnp.log(1 + jnp.exp(-margins)))  # BUG LL102: log(1 + exp(x)) is softplus


def cosine_loss(params, x, targets):
    emb = x @ params["w"]
    cos = jnp.sum(emb * targets, axis=-1) / (jnp.linalg.norm(emb, axis=-1) * jnp.linalg.norm(targets, axis=-1))  # BUG LL103: zero vectors
    return jnp.mean(1 - cos)


grads = jax.grad(bce_loss)(params, x, labels)
