"""JAX losses written safely: losslint must stay silent on this file."""

import jax
import jax.numpy as jnp
import optax


def bce_loss(params, x, labels):
    logits = model.apply(params, x)
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))


def log_sigmoid_loss(params, x, labels):
    logits = model.apply(params, x)
    return -jnp.mean(labels * jax.nn.log_sigmoid(logits) + (1 - labels) * jax.nn.log_sigmoid(-logits))


def logistic_loss(params, x, labels):
    margins = labels * (x @ params["w"] + params["b"])
    return jnp.mean(jax.nn.softplus(-margins))


def cosine_loss(params, x, targets, eps=1e-8):
    emb = x @ params["w"]
    # safe_norm, not maximum(norm(x), eps): the gradient of norm at a zero vector is NaN even when maximum picks eps
    den = optax.safe_norm(emb, eps, axis=-1) * optax.safe_norm(targets, eps, axis=-1)
    return jnp.mean(1 - jnp.sum(emb * targets, axis=-1) / den)


def clipped_nll(params, x, labels):
    probs = jax.nn.softmax(x @ params["w"])
    return -jnp.mean(jnp.sum(labels * jnp.log(jnp.clip(probs, 1e-7, 1.0)), axis=-1))


grads = jax.grad(bce_loss)(params, x, labels)
loss, grads = jax.value_and_grad(cosine_loss)(params, x, targets)
