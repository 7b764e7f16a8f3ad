"""st3d_edge.model: the descriptor network of teacher and student, decoder, Chamfer loss, scorer.

Modules: ``network`` (DescriptorNet, reference_forward), ``blocks`` (SharedMLP, LFA,
ResidualBlock), ``pooling`` (the fast neighbour averages), ``decoder`` (Decoder),
``chamfer`` (chamfer_distance, chamfer_reference), ``scorer`` (Scorer).

Parameter names of ``DescriptorNet`` (torch ``nn.Linear``: ``weight`` is (out, in),
``y = x @ weight.T + bias``; every "MLP" below is that Linear then LeakyReLU(0.2)):

=====================================  ==============  ======================================
name (b = 0..blocks-1)                 shape           role
=====================================  ==============  ======================================
blocks.b.mlp_in.linear.{weight,bias}   (d/4, d)        MLP on the block input
blocks.b.lfa1.geo.linear.{weight,bias} (d/4, g)        MLP on G in the first LFA (d/4 -> d/2)
blocks.b.lfa2.geo.linear.{weight,bias} (d/2, g)        MLP on G in the second LFA (d/2 -> d)
blocks.b.mlp_out.linear.{weight,bias}  (d, d)          MLP after the two LFAs
blocks.b.shortcut.linear.{weight,bias} (d, d)          MLP on the block input, added
head_hidden.{weight,bias}              (d, d)          Linear, then LeakyReLU(0.2)
head_out.{weight,bias}                 (d, d)          Linear, no activation
=====================================  ==============  ======================================

``g`` is 4, or 7 with ``absolute_coords``. One block, from its input ``f`` (n, d), with
``mean_j`` the average over the k kNN columns (self included) and G (n, k, g) from
``DescriptorNet.geometric_features``::

    h = mlp_in(f)                                         # (n, d/4)
    h = concat(mean_j lfa1.geo(G), mean_j h[knn])         # (n, d/2), geometric part first
    h = concat(mean_j lfa2.geo(G), mean_j h[knn])         # (n, d)
    f = mlp_out(h) + shortcut(f)                          # no activation after the sum

The network starts from ``f = 0`` and ends with ``head_out(leaky(head_hidden(f)))``.
``Decoder``: ``hidden1`` (128, d), ``hidden2`` (128, 128) with LeakyReLU(0.05), ``out`` (3m, 128).
``Scorer``: submodules ``teacher``, ``student``; buffers ``scale`` (scalar), ``mu``, ``sigma`` (d,).
"""
