"""The same TF1 graph written safely: losslint must stay silent on this file."""

import tensorflow as tf

x = tf.placeholder(tf.float32, [None, 784])
y_ = tf.placeholder(tf.float32, [None, 10])
W = tf.Variable(tf.zeros([784, 10]))
b = tf.Variable(tf.zeros([10]))

logits = tf.matmul(x, W) + b
cross_entropy = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits_v2(labels=y_, logits=logits))

y_hat = build_cnn(x)  # defined elsewhere, ends in a softmax
cnn_xent = -tf.reduce_sum(y_ * tf.log(tf.clip_by_value(y_hat, 1e-7, 1.0)))

y = tf.nn.softmax(logits)
mask = tf.cast(tf.not_equal(y_, 0), tf.float32)
masked_mse = tf.div_no_nan(tf.reduce_sum(tf.square(y_ - y) * mask), tf.reduce_sum(mask))

loss = cross_entropy + cnn_xent + 0.1 * masked_mse
train_step = tf.train.AdamOptimizer(1e-3).minimize(loss)
