#!/usr/bin/env python3
"""Max-Cut peer for `nq-bench maxcut`: D-Wave's SimulatedAnnealingSampler (PyPI dwave-samplers).

Usage:
    dwave_maxcut.py --probe
    dwave_maxcut.py FILE NUM_READS NUM_SWEEPS SEED [BETA_HOT BETA_COLD]

FILE is a G-set/rudy graph (`n m`, then `i j [w]` lines with 1-based nodes; a missing weight
is 1). The graph becomes the spin model E(s) = sum_uv (w/2) s_u s_v - W/2, whose energy is
minus the cut, exactly as nq-quantum encodes it. The sampler runs with its defaults (geometric
beta schedule over its default beta range, sequential Metropolis sweeps) and the given reads,
sweeps and seed; BETA_HOT and BETA_COLD, when given, replace its default beta range.

Prints one JSON object on stdout: the library version, the wall time of the `sample` call
(building the model from arrays happens before the timer starts), the sampler's own
preprocessing/sampling/postprocessing split, the best and mean cut over reads, and the best
read's sides as a string of 0/1 (bit 1 = spin +1) so the caller can check the cut itself.

Exit status 3 with a message on stderr means dwave-samplers (or numpy/dimod) is not
importable; the caller then skips this peer.
"""

import json
import sys
import time


def import_peer():
    try:
        import dimod
        import numpy
        from dwave.samplers import SimulatedAnnealingSampler
        from dwave.samplers import __version__ as version
    except ImportError as err:
        print(f"dwave-samplers is not importable: {err}", file=sys.stderr)
        sys.exit(3)
    return dimod, numpy, SimulatedAnnealingSampler, version


def read_gset(path):
    with open(path, encoding="ascii") as handle:
        lines = [line.split() for line in handle if line.strip()]
    nodes, edges = int(lines[0][0]), int(lines[0][1])
    rows = lines[1 : 1 + edges]
    if len(rows) != edges:
        raise ValueError(f"{path}: header promises {edges} edges, found {len(rows)}")
    us = [int(r[0]) - 1 for r in rows]
    vs = [int(r[1]) - 1 for r in rows]
    ws = [float(r[2]) if len(r) > 2 else 1.0 for r in rows]
    return nodes, us, vs, ws


def main(argv):
    dimod, numpy, SimulatedAnnealingSampler, version = import_peer()
    if argv[1:] == ["--probe"]:
        print(json.dumps({"version": version}))
        return 0
    if len(argv) not in (5, 7):
        print(__doc__, file=sys.stderr)
        return 2
    path, num_reads, num_sweeps, seed = argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    options = {}
    if len(argv) == 7:
        options["beta_range"] = [float(argv[5]), float(argv[6])]
    nodes, us, vs, ws = read_gset(path)
    weights = numpy.asarray(ws, dtype=numpy.float64)
    bqm = dimod.BinaryQuadraticModel.from_numpy_vectors(
        numpy.zeros(nodes),
        (numpy.asarray(us, dtype=numpy.int64), numpy.asarray(vs, dtype=numpy.int64), weights / 2.0),
        -weights.sum() / 2.0,
        dimod.SPIN,
        variable_order=range(nodes),
    )
    sampler = SimulatedAnnealingSampler()
    started = time.perf_counter()
    result = sampler.sample(
        bqm, num_reads=num_reads, num_sweeps=num_sweeps, seed=seed, **options
    )
    seconds = time.perf_counter() - started

    order = list(range(nodes))
    samples = result.record.sample
    columns = [result.variables.index(v) for v in order]
    # Recompute every read's cut from its spins rather than trusting reported energies.
    spins = samples[:, columns].astype(numpy.int64)
    u_idx = numpy.asarray(us, dtype=numpy.int64)
    v_idx = numpy.asarray(vs, dtype=numpy.int64)
    cut_mask = spins[:, u_idx] != spins[:, v_idx]
    cuts = (cut_mask * weights).sum(axis=1)
    best = int(numpy.argmax(cuts))
    timing = result.info.get("timing", {})
    print(
        json.dumps(
            {
                "version": version,
                "num_reads": num_reads,
                "num_sweeps": num_sweeps,
                "seed": seed,
                "seconds": seconds,
                "preprocessing_seconds": timing.get("preprocessing_ns", 0) / 1e9,
                "sampling_seconds": timing.get("sampling_ns", 0) / 1e9,
                "postprocessing_seconds": timing.get("postprocessing_ns", 0) / 1e9,
                "beta_range": [float(b) for b in result.info.get("beta_range", [])],
                "best_cut": float(cuts[best]),
                "mean_cut": float(cuts.mean()),
                "best_sides": "".join("1" if s > 0 else "0" for s in spins[best]),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
