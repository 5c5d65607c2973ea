from evalkit.cli.metrics_cmd import format_table
from evalkit.estimate import Estimate


def _stat(overall, higher=True, groups=None, details=None):
    return {"overall": overall.to_json(), "higher_is_better": higher,
            "groups": {g: {k: v.to_json() for k, v in found.items()} for g, found in (groups or {}).items()},
            "details": details or {}}


def test_every_stat_prints_overall_baselines_and_groups_one_row_each():
    document = {"metrics": {
        "toyworld.count": _stat(Estimate(0.725, 0.66, 0.78, 204, "wilson"),
                                groups={"category": {"Counting": Estimate(0.5, 0.3, 0.7, 20, "wilson")}},
                                details={"baselines": {"random-scenes": {"overall": Estimate.point(0.08, 1000).to_json()}}}),
        "fid": _stat(Estimate.point(12.345678, 30000), higher=False),
        "kid": _stat(Estimate(0.001234, 0.0009, 0.0015, 800, "subsets-normal"), higher=False),
    }}
    lines = format_table(document)
    assert lines[0].startswith("toyworld.count ^") and "0.7250 [0.6600, 0.7800]  n=204" in lines[0]
    assert "(random-scenes)" in lines[1] and "0.0800  n=1000" in lines[1]
    assert lines[2].strip().startswith("category Counting") and "0.5000 [0.3000, 0.7000]  n=20" in lines[2]
    assert lines[3].startswith("fid v") and "12.3457  n=30000" in lines[3]
    assert "1.234e-03 [9.000e-04, 1.500e-03]" in lines[4]
