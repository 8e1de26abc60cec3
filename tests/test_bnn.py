"""Bayesian MLPs end to end: fit with Pyro, pack, unpack to a torch state dict, load, evaluate."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import bayescompress
from bayescompress.cli import main
from bayescompress.errors import BayesCompressError
from bayescompress.evaluate.bnn import evaluate_bnn
from bayescompress.export import write_unpacked
from bayescompress.fit.bnn import INIT_SCALE, fit_bnn, make_bayesian, prepare_targets, resolve_device
from bayescompress.networks.mlp import MLP, network_from_arrays, read_state_dict
from bayescompress.networks.model_spec import check_tensors_match_spec, mlp_spec, spec_tensor_shapes
from bayescompress.networks.tabular import load_table, split_rows
from bayescompress.packing import archive_info, pack, unpack
from bayescompress.posterior import Posterior
from bayescompress.vbq import GaussianPrior, stored_precision

from .test_cli import assert_one_line_error, run

FIT = {"hidden": (16,), "steps": 150, "lr": 0.03, "batch": 0, "seed": 0, "show_progress": False}


def blobs(rows: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated Gaussian classes in 4-D, features on different scales."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, rows)
    centres = np.array([[3.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]])
    features = centres[labels] + rng.normal(size=(rows, 4))
    return features * np.array([1.0, 10.0, 0.1, 5.0]) + 7.0, labels


def wave(rows: int = 160, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.uniform(-2, 2, (rows, 2))
    signal = np.sin(2 * features[:, 0]) + 0.5 * features[:, 1]
    return features, 100.0 + 20.0 * signal + rng.normal(0, 2, rows)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    folder = tmp_path_factory.mktemp("classifier")
    features, labels = blobs()
    np.savez(folder / "blobs.npz", X=features, y=labels)
    result = fit_bnn(folder / "blobs.npz", folder / "post.h5", **FIT)
    return folder, result


@pytest.fixture(scope="module")
def regressor(tmp_path_factory):
    folder = tmp_path_factory.mktemp("regressor")
    features, values = wave()
    rows = np.column_stack([features, values])
    np.savetxt(folder / "wave.csv", rows, delimiter=",", header="a,b,y", comments="", fmt="%.17g")
    result = fit_bnn(folder / "wave.csv", folder / "post.h5", task="regression", target="y",
                     **(FIT | {"hidden": (32,), "steps": 300}))
    return folder, result


def test_fit_learns_separable_classes_far_above_chance(classifier):
    _, result = classifier
    assert result.test_metrics["accuracy"] >= 0.9  # chance is about 1/3
    assert result.test_metrics["nll"] < np.log(3)


def test_posterior_tensors_are_the_pyro_site_names_with_the_spec_shapes(classifier):
    folder, result = classifier
    posterior = Posterior.load(folder / "post.h5")
    assert posterior.kind == "network"
    assert list(posterior.tensors) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    assert {n: t.shape for n, t in posterior.tensors.items()} == spec_tensor_shapes(posterior.model_spec)
    assert posterior.model_spec["layers"][0]["in_features"] == 4
    assert posterior.model_spec["likelihood"]["classes"] == [0, 1, 2]
    # SVI moved every scale away from its initial value, each weight its own way (mean field)
    stds = np.concatenate([t.std.ravel() for t in posterior.tensors.values()])
    assert stds.min() > 10 * INIT_SCALE and np.unique(stds).size > 0.9 * stds.size


def test_model_spec_records_normalization_and_split_of_the_training_rows(classifier):
    folder, result = classifier
    spec = Posterior.load(folder / "post.h5").model_spec
    assert spec == result.posterior.model_spec
    data = spec["data"]
    assert data["path"] == str((folder / "blobs.npz").resolve())
    assert (data["seed"], data["test_fraction"], data["rows"], data["features"]) == (0, 0.2, 150, 4)
    features, _ = blobs()
    train = split_rows(150, 0.2, 0).train
    assert np.allclose(spec["normalization"]["input_mean"], features[train].mean(0))
    assert np.allclose(spec["normalization"]["input_std"], features[train].std(0))


def test_model_spec_round_trips_through_archive_and_state_dict(classifier, tmp_path):
    folder, result = classifier
    pack(folder / "post.h5", tmp_path / "a.bcz", lam=0.1)
    assert unpack(tmp_path / "a.bcz").model_spec == result.posterior.model_spec
    assert run("unpack", tmp_path / "a.bcz", "-o", tmp_path / "model.pt").returncode == 0
    spec, tensors = read_state_dict(tmp_path / "model.pt")
    assert spec == result.posterior.model_spec


def test_pack_gives_every_tensor_its_own_empirical_prior(classifier, tmp_path):
    folder, result = classifier
    pack(folder / "post.h5", tmp_path / "a.bcz", lam=0.1)
    entries = {t["name"]: t["params"] for t in archive_info(tmp_path / "a.bcz")["tensors"]}
    for name, tensor in result.posterior.tensors.items():
        prior = stored_precision(GaussianPrior.empirical(tensor.mean))
        assert float.fromhex(entries[name]["scale"]) == prior.scale
    assert len({params["scale"] for params in entries.values()}) == len(entries)


def test_unpacked_state_dict_and_loaded_module_hold_exactly_the_archive_values(classifier, tmp_path):
    folder, _ = classifier
    pack(folder / "post.h5", tmp_path / "a.bcz", lam=3.0)
    values = unpack(tmp_path / "a.bcz").tensors
    result = run("unpack", tmp_path / "a.bcz", "--format", "torch", "-o", tmp_path / "model.bin")
    assert result.returncode == 0, result.stderr
    state = torch.load(tmp_path / "model.bin", weights_only=True)
    assert type(state) is dict
    for name, array in values.items():
        assert state[name].numpy().tobytes() == array.tobytes()
    network = bayescompress.load(tmp_path / "a.bcz")
    assert isinstance(network, torch.nn.Module) and not network.training
    for name, param in network.named_parameters():
        assert param.detach().numpy().tobytes() == values[name].tobytes()
    # the state dict loads into a freshly built module, spec included (strict)
    fresh = MLP(json.loads(state["_extra_state"]))
    fresh.load_state_dict(state)
    features, _ = blobs(rows=40, seed=5)
    rebuilt = network_from_arrays(unpack(tmp_path / "a.bcz").model_spec, dict(values))
    with torch.no_grad():
        inputs = torch.as_tensor(features, dtype=torch.float32)
        assert torch.equal(network(inputs), rebuilt(inputs))
        assert torch.equal(network(inputs), fresh(inputs))
    assert network.predict(features).tolist() == rebuilt.predict(features).tolist()


def test_coarse_quantization_changes_the_weights_but_not_the_archive_round_trip(classifier, tmp_path):
    folder, result = classifier
    pack(folder / "post.h5", tmp_path / "a.bcz", lam=30.0)
    network = bayescompress.load(tmp_path / "a.bcz")
    means = result.posterior.tensors["layers.0.weight"].mean
    assert not np.array_equal(network.layers[0].weight.detach().numpy(), means)


def test_evaluate_agrees_between_posterior_means_and_archive_at_tiny_lambda(classifier, tmp_path):
    folder, result = classifier
    pack(folder / "post.h5", tmp_path / "a.bcz", lam=1e-8)
    on_posterior = evaluate_bnn(folder / "post.h5")
    on_archive = evaluate_bnn(tmp_path / "a.bcz")
    assert on_posterior["accuracy"] == pytest.approx(result.test_metrics["accuracy"])
    assert on_archive["accuracy"] == on_posterior["accuracy"]
    assert on_archive["nll"] == pytest.approx(on_posterior["nll"], rel=1e-4)
    assert on_archive["rows"] == 30 and on_archive["split"] == "test"


def test_evaluate_posterior_predictive_averages_weight_draws(classifier):
    folder, _ = classifier
    once = evaluate_bnn(folder / "post.h5", samples=8, seed=1)
    again = evaluate_bnn(folder / "post.h5", samples=8, seed=1)
    other = evaluate_bnn(folder / "post.h5", samples=8, seed=2)
    assert once == again and once["nll"] != other["nll"]
    assert once["weights"] == "posterior predictive (8 samples)" and once["accuracy"] >= 0.8


def test_evaluate_command_prints_json_for_posterior_archive_and_state_dict(classifier, tmp_path, capsys):
    folder, _ = classifier
    pack(folder / "post.h5", tmp_path / "a.bcz", lam=0.01)
    write_unpacked(unpack(tmp_path / "a.bcz"), tmp_path / "model.pt", "torch")
    reports = []
    for target in (folder / "post.h5", tmp_path / "a.bcz", tmp_path / "model.pt"):
        result = run("evaluate", "bnn", target, "--json")
        assert result.returncode == 0, result.stderr
        reports.append(json.loads(result.stdout))
    assert [r["weights"] for r in reports] == ["posterior means", "archive values", "state dict"]
    assert reports[1]["accuracy"] == reports[2]["accuracy"] and reports[1]["nll"] == reports[2]["nll"]
    assert main(["evaluate", "bnn", str(tmp_path / "a.bcz")]) == 0
    text = capsys.readouterr().out
    assert f"accuracy {reports[1]['accuracy']:.4f}" in text and "test split (30 rows)" in text


def test_sweep_network_quality_is_the_held_out_accuracy(classifier):
    from bayescompress.quality import quality_for

    _, result = classifier
    means = {name: tensor.mean for name, tensor in result.posterior.tensors.items()}
    quality = quality_for("network")(means, result.posterior)
    assert quality.name == "accuracy" and quality.value == result.test_metrics["accuracy"]
    assert quality.extras["nll"] == pytest.approx(result.test_metrics["nll"])


def test_regression_learns_the_function_and_records_its_noise(regressor):
    folder, result = regressor
    _, values = wave()
    assert result.test_metrics["rmse"] < 0.5 * values.std()
    spec = result.posterior.model_spec
    assert spec["task"] == "regression" and spec["likelihood"]["name"] == "gaussian"
    assert 0 < spec["likelihood"]["noise_std"] < values.std()
    report = evaluate_bnn(folder / "post.h5", samples=4)
    assert set(report) >= {"rmse", "nll"} and "accuracy" not in report


def test_regression_network_predicts_in_the_targets_units_after_pack_and_load(regressor, tmp_path):
    folder, _ = regressor
    pack(folder / "post.h5", tmp_path / "a.bcz", lam=0.01)
    network = bayescompress.load(tmp_path / "a.bcz")
    features, values = wave()
    assert np.sqrt(np.mean((network.predict(features) - values) ** 2)) < 0.5 * values.std()
    assert evaluate_bnn(tmp_path / "a.bcz")["rmse"] == pytest.approx(evaluate_bnn(folder / "post.h5")["rmse"],
                                                                      rel=0.05)


@pytest.mark.slow
def test_csv_classification_with_string_labels_through_the_command(tmp_path):
    features, labels = blobs(rows=60)
    names = np.array(["cat", "dog", "eel"])[labels]
    text = "x1,x2,species,x3,x4\n" + "".join(
        f"{f[0]},{f[1]},{name},{f[2]},{f[3]}\n" for f, name in zip(features, names, strict=True))
    (tmp_path / "pets.csv").write_text(text)
    result = run("fit", "bnn", tmp_path / "pets.csv", "--target", "species", "-o", tmp_path / "p.h5",
                 "--hidden", "8", "--steps", "120", "--lr", "0.05", "--batch", "0", "--kl-weight", "0.5")
    assert result.returncode == 0, result.stderr
    assert "accuracy" in result.stdout
    fit = Posterior.load(tmp_path / "p.h5").metadata["fit"]
    assert fit["kl_weight"] == 0.5 and "tempered_objective" in fit and "elbo" not in fit
    assert "tempered objective (KL x 0.5)" in result.stdout  # not called an ELBO
    spec = Posterior.load(tmp_path / "p.h5").model_spec
    assert spec["likelihood"]["classes"] == ["cat", "dog", "eel"]
    assert spec["data"]["target"] == "species"
    assert run("pack", tmp_path / "p.h5", "--lambda", "0.1", "-o", tmp_path / "a.bcz").returncode == 0
    network = bayescompress.load(tmp_path / "a.bcz")
    assert set(network.predict(features[:, [0, 1, 2, 3]])) <= {"cat", "dog", "eel"}
    report = json.loads(run("evaluate", "bnn", tmp_path / "a.bcz", "--json").stdout)
    assert report["accuracy"] > 0.7


def test_make_bayesian_puts_a_normal_prior_on_every_parameter_of_an_ordinary_module():
    import pyro.poutine

    ordinary = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 2))
    network = make_bayesian(ordinary, prior_std=0.7)
    trace = pyro.poutine.trace(network).get_trace(torch.zeros(4, 3))
    sites = {name: trace.nodes[name]["fn"] for name in trace.stochastic_nodes}
    assert sorted(sites) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    for fn in sites.values():
        assert torch.all(fn.base_dist.loc == 0) and torch.all(fn.base_dist.scale == 0.7)
    assert sites["0.weight"].event_shape == (5, 3)


def test_spec_rejects_tensors_that_do_not_match():
    spec = mlp_spec([2, 3, 1], task="regression", noise_std=0.5, input_mean=[0, 0], input_std=[1, 1],
                    target_mean=0.0, target_std=1.0)
    shapes = spec_tensor_shapes(spec)
    with pytest.raises(BayesCompressError, match="has shape"):
        check_tensors_match_spec(spec, shapes | {"layers.0.weight": (3, 3)}, "x.h5")
    with pytest.raises(BayesCompressError, match="is missing"):
        check_tensors_match_spec(spec, {"layers.0.weight": (3, 2)}, "x.h5")
    with pytest.raises(BayesCompressError, match="needs 1 output"):
        mlp_spec([2, 3], task="regression", noise_std=0.5, input_mean=[0, 0], input_std=[1, 1],
                 target_mean=0.0, target_std=1.0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_a_clear_error(tmp_path):
    with pytest.raises(BayesCompressError, match="no CUDA device"):
        resolve_device("cuda")
    np.savez(tmp_path / "d.npz", X=np.zeros((10, 2)), y=np.arange(10) % 2)
    assert_one_line_error(run("fit", "bnn", tmp_path / "d.npz", "-o", tmp_path / "p.h5", "--device", "cuda"),
                          "no CUDA device")
    assert not (tmp_path / "p.h5").exists()


# ------------------------------------------------------------------------- bad input


def test_missing_target_column_is_one_line(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,label\n1,2,0\n3,4,1\n")
    assert_one_line_error(run("fit", "bnn", tmp_path / "d.csv", "--target", "class", "-o", tmp_path / "p.h5"),
                          "no column 'class' (columns: a, b, label)")
    assert not (tmp_path / "p.h5").exists()
    with pytest.raises(BayesCompressError, match="needs --target"):
        load_table(tmp_path / "d.csv")


def test_non_numeric_csv_is_one_line_naming_the_cell(tmp_path):
    (tmp_path / "d.csv").write_text("a,colour,label\n1,2,0\n3,red,1\n")
    assert_one_line_error(run("fit", "bnn", tmp_path / "d.csv", "--target", "label", "-o", tmp_path / "p.h5"),
                          "column 'colour' is not numeric (line 3: 'red')")
    (tmp_path / "r.csv").write_text("a,b,y\n1,2,0.5\n3,4,high\n5,6,1\n")
    with pytest.raises(BayesCompressError, match="regression targets must be numbers"):
        prepare_targets(load_table(tmp_path / "r.csv", "y"), "regression")
    (tmp_path / "ragged.csv").write_text("a,b,y\n1,2,0\n3,1\n")
    with pytest.raises(BayesCompressError, match="line 3 has 2 cells but the header has 3"):
        load_table(tmp_path / "ragged.csv", "y")
    (tmp_path / "inf.csv").write_text("a,b,y\n1,inf,0\n")
    with pytest.raises(BayesCompressError, match="column 'b' has a non-finite value on line 2"):
        load_table(tmp_path / "inf.csv", "y")


def test_npz_without_x_and_y_is_one_line(tmp_path):
    np.savez(tmp_path / "d.npz", features=np.zeros((4, 2)), y=np.zeros(4))
    assert_one_line_error(run("fit", "bnn", tmp_path / "d.npz", "-o", tmp_path / "p.h5"), "has no X")
    np.savez(tmp_path / "e.npz", X=np.zeros((4, 2)), y=np.zeros(3))
    with pytest.raises(BayesCompressError, match="one entry per row of X"):
        load_table(tmp_path / "e.npz")
    np.save(tmp_path / "f.npy", np.zeros(3))
    with pytest.raises(BayesCompressError, match="single .npy"):
        load_table((tmp_path / "f.npy").rename(tmp_path / "f.npz"))
    np.savez(tmp_path / "g.npz", X=np.zeros((4, 2)), y=np.array([0.5, 1.0, 2.0, 0.0]))
    with pytest.raises(BayesCompressError, match="use --task regression"):
        prepare_targets(load_table(tmp_path / "g.npz"), "classification")


def test_pickled_state_dict_is_refused_without_running_its_code(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"layers.0.weight": torch.zeros(2, 2), "evil": Payload()}, tmp_path / "model.pt")
    assert_one_line_error(run("evaluate", "bnn", tmp_path / "model.pt"), "refusing to load it")
    assert not marker.exists()


def test_state_dict_without_spec_needs_one_and_a_wrong_spec_is_refused(classifier, tmp_path):
    folder, result = classifier
    means = {n: torch.from_numpy(t.mean) for n, t in result.posterior.tensors.items()}
    torch.save(means, tmp_path / "bare.pt")
    with pytest.raises(BayesCompressError, match="pass --spec SPEC.json"):
        evaluate_bnn(tmp_path / "bare.pt")
    spec = result.posterior.model_spec
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    report = evaluate_bnn(tmp_path / "bare.pt", spec_path=tmp_path / "spec.json")
    assert report["accuracy"] == pytest.approx(result.test_metrics["accuracy"])
    wrong = dict(spec, layers=[dict(spec["layers"][0], out_features=17),
                               dict(spec["layers"][1], in_features=17)])
    (tmp_path / "wrong.json").write_text(json.dumps(wrong))
    assert_one_line_error(run("evaluate", "bnn", tmp_path / "bare.pt", "--spec", tmp_path / "wrong.json"),
                          "has shape (16, 4) but the model spec says (17, 4)")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(BayesCompressError, match="not a JSON file"):
        evaluate_bnn(tmp_path / "bare.pt", spec_path=tmp_path / "junk.json")


def test_evaluate_on_other_files_is_one_line(tmp_path, classifier):
    (tmp_path / "notes.txt").write_text("hello")
    assert_one_line_error(run("evaluate", "bnn", tmp_path / "notes.txt"), "not a posterior file")
    with pytest.raises(BayesCompressError, match="no such file"):
        evaluate_bnn(tmp_path / "nope.h5")
    folder, _ = classifier
    np.savez(tmp_path / "narrow.npz", X=np.zeros((10, 3)), y=np.arange(10) % 3)
    with pytest.raises(BayesCompressError, match="has 3 feature columns but the network takes 4"):
        evaluate_bnn(folder / "post.h5", data=tmp_path / "narrow.npz")
    with pytest.raises(BayesCompressError, match="--samples needs a posterior file"):
        evaluate_bnn(_packed(folder, tmp_path), samples=3)


def test_evaluate_warns_when_the_data_differs_from_the_fit_data(classifier, tmp_path):
    folder, _ = classifier
    features, labels = blobs()
    np.savez(tmp_path / "moved.npz", X=features, y=labels)
    assert evaluate_bnn(folder / "post.h5", data=tmp_path / "moved.npz")["rows"] == 30
    np.savez(tmp_path / "changed.npz", X=features + 1e-3, y=labels)
    with pytest.warns(UserWarning, match="differs from the data the network was fitted on"):
        evaluate_bnn(folder / "post.h5", data=tmp_path / "changed.npz")


def _packed(folder, tmp_path):
    pack(folder / "post.h5", tmp_path / "a.bcz", lam=0.1)
    return tmp_path / "a.bcz"


def test_bad_fit_settings_are_one_line(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.zeros((10, 2)), y=np.arange(10) % 2)
    assert_one_line_error(run("fit", "bnn", tmp_path / "d.npz", "-o", tmp_path / "p.h5", "--hidden", "8,x"),
                          "not comma-separated integers")
    for options, message in (({"lr": -1.0}, "--lr must be a number > 0"),
                             ({"test_fraction": 1.5}, "test fraction must be between 0 and 1"),
                             ({"prior_std": 0.0}, "--prior-std must be a number > 0"),
                             ({"kl_weight": 0.0}, r"--kl-weight must be in \(0, 1\]"),
                             ({"kl_weight": 2.0}, r"--kl-weight must be in \(0, 1\]"),
                             ({"steps": 0}, "--steps must be at least 1")):
        with pytest.raises(BayesCompressError, match=message):
            fit_bnn(tmp_path / "d.npz", tmp_path / "p.h5", **options)
    assert not (tmp_path / "p.h5").exists()
