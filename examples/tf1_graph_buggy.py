"""TF1 graph code, as the old tutorials wrote it. Each `# BUG LLxxx` comment marks a line losslint must report."""

import tensorflow as tf

x = tf.placeholder(tf.float32, [None, 784])
y_ = tf.placeholder(tf.float32, [None, 10])
W = tf.Variable(tf.zeros([784, 10]))
b = tf.Variable(tf.zeros([10]))

y = tf.nn.softmax(tf.matmul(x, W) + b)
cross_entropy = tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(y), reduction_indices=[1]))  # BUG LL102: log of softmax

y_hat = build_cnn(x)  # defined elsewhere, ends in a softmax
cnn_xent = -tf.reduce_sum(y_ * tf.log(y_hat))  # BUG LL101: y_hat can be exactly 0

mask = tf.cast(tf.not_equal(y_, 0), tf.float32)
masked_mse = tf.div(tf.reduce_sum(tf.square(y_ - y) * mask), tf.reduce_sum(mask))  # BUG LL103: an all-zero batch

loss = cross_entropy + cnn_xent + 0.1 * masked_mse
train_step = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
