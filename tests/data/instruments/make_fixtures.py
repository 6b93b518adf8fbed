"""Write the synthetic instrument fixtures in this folder (deterministic; seed fixed).

No real ZetaView, .nano, per-particle or plate-reader files are available, so
these are built to the documented layouts (../shared/DOMAIN.md section 4) from
known ground truth. The values each test expects are computed here, or from the
physics, never read back from the reader under test. Run from the repo root:

    .venv/bin/python tests/data/instruments/make_fixtures.py
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import zetaview_gen

HERE = Path(__file__).resolve().parent
KB_J_PER_K = 1.380649e-23

# --- NanoSight NTA 3.4 summary with all weightings and diffusion data ---------------
NTA_VIDEOS = ["ev_lot7_00", "ev_lot7_01", "ev_lot7_02", "ev_lot7_03"]
NTA_TEMPERATURE_C = 25.0
NTA_VISCOSITY_CP = 0.8904  # water at 25 C (NanoSight relation)
# Number-weighted means per video (nm); video 4 failed (zero results).
NTA_MEANS = [118.2, 121.6, 119.9, 0.0]
NTA_AVERAGE = {"Mean": 119.9, "Mode": 104.3, "SD": 38.6, "D10": 78.1, "D50": 112.4, "D90": 168.0}
NTA_CONC = [2.31e11, 2.44e11, 2.28e11, 0.0]
NTA_CONC_AVG = 1.76e11  # the vendor's Average, as printed (includes the failed video)
NTA_DILUTION = 500.0


def _diffusion_1e4_nm2_per_s(diameter_nm: float) -> float:
    d = KB_J_PER_K * (NTA_TEMPERATURE_C + 273.15) / (3 * math.pi * NTA_VISCOSITY_CP * 1e-3 * diameter_nm * 1e-9)
    return d / 1e-14  # m^2/s -> 1e4 nm^2/s


def write_nta_summary() -> None:
    n = len(NTA_VIDEOS)
    pad = "," * (n + 2)
    lines = [
        "NTA Experiment Summary File,",
        "Created with NTA 3.4 Build 3.4.4,",
        ",",
        "[Experiment Details],,",
        "Software Version,NTA 3.4 Build 3.4.4,",
        "Experiment Name,ev_lot7_.nano,",
        "Operator Name,QC-2,",
        "Time Captured,09:15:30  03/11/2025,",
        "Sample Description,EV lot 7 (SEC F2),",
        "Pre-treatment,0.22 \u00b5m filtered,",
        "Diluent,PBS,",
        'Remarks,"stored at -80 \u00b0C, 1 freeze-thaw",',
        ",,",
        "Filename:," + ",".join(NTA_VIDEOS) + ",",
        "Processed," + ",".join(["Yes"] * n) + ",",
        "",
        "[Conditions]" + pad,
        "Temperature/C," + ",".join([f"{NTA_TEMPERATURE_C:.3f}"] * n) + ",",
        "Viscosity/cP," + ",".join([f"{NTA_VISCOSITY_CP:.6f}"] * n) + ",",
        "Camera Type," + ",".join(["sCMOS"] * n) + ",",
        "Laser Type," + ",".join(["Blue488"] * n) + ",",
        "Camera Level," + ",".join(["14"] * n) + ",",
        "Shutter/ms," + ",".join(["30.000000"] * n) + ",",
        "Frame rate/fps," + ",".join(["24.982500"] * n) + ",",
        "Syringe Pump Speed/AU," + ",".join(["50"] * n) + ",",
        pad,
        "[Settings]" + pad,
        "Detection Threshold," + ",".join(["5"] * n) + ",",
        "Total frames analysed," + ",".join(["1498", "1498", "1498", "0"]) + ",",
        pad,
        "[Results]" + "," * (n + 1) + "Average,Standard Error,",
        "Dilution factor (concentrations adjusted for this factor),"
        + ",".join(["5.00e+02"] * n) + ",,,",
        "Concentration (Particles / ml),"
        + ",".join(f"{c:.2e}" for c in NTA_CONC) + f",{NTA_CONC_AVG:.2e},5.89e+10,",
        "Particles per frame,46.2,48.8,45.6,0.0,35.2,11.8,",
        "Completed tracks,3112,3266,3054,0,,,",
        pad,
        "[Concentration Warnings]",
        "Validity of concentration measurement,OK,OK,OK,Unreliable,",
        "Particles per frame,OK,OK,OK,Too Low,",
        "Noise level,No,No,High noise,No,",
        "",
        "[Information]",
        "Completed Tracks,OK,OK,OK,<100,",
        "Noise level,No,No,High noise,No,",
        "Vibration correction applied,Yes,Yes,Yes,No,",
        "",
        "[Data Included],",
        "Size distribution - Number weighting - With Percentiles,",
        ",",
        "[Size Data],,",
        "Analysis Method,FTLA,",
    ]
    bins = np.arange(1000) + 0.5
    rng = np.random.default_rng(7)
    for weighting, scale in (("Number", 1.0), ("Surface Area", 1.15), ("Volume", 1.3)):
        means = [m * scale for m in NTA_MEANS]
        lines += [f"Weighting,{weighting},",
                  "Filename," + ",".join(NTA_VIDEOS) + ",Average,Standard Error,"]
        for key, value in NTA_AVERAGE.items():
            per_video = [round(value * scale * m / NTA_AVERAGE["Mean"], 1) if m else 0 for m in NTA_MEANS]
            lines.append(f"{key}," + ",".join(f"{v:.1f}" for v in per_video)
                         + f",{value * scale:.1f},0.9,")
        lines.append("Valid Tracks,1402.0,1466.0,1390.0,0.0,,,")
        lines += ["Graph Data,", "Bin centre (nm)," + ",".join(["Concentration (particles / ml)"] * n)
                  + ",Concentration average,Standard Error,"]
        curves = []
        for m, c in zip(means, NTA_CONC, strict=True):
            if m == 0:
                curves.append(np.zeros(bins.size))
                continue
            sigma = 0.3
            mu = math.log(m) - sigma**2 / 2
            pdf = np.exp(-((np.log(bins) - mu) ** 2) / (2 * sigma**2)) / (bins * sigma * math.sqrt(2 * math.pi))
            curves.append(np.round(pdf * c * rng.uniform(0.98, 1.02)))
        curves = np.array(curves)
        avg = np.round(curves.mean(axis=0))
        se = np.round(curves.std(axis=0, ddof=1) / math.sqrt(n))
        for i, b in enumerate(bins):
            lines.append(f"{b}," + ",".join(str(int(v)) for v in curves[:, i]) + f",{int(avg[i])},{int(se[i])},")
        lines += ["", "Percentile," + ",".join(["Size (nm)"] * n) + ","]
        for p in range(101):
            vals = [0.0 if m == 0 else m * (0.55 + 0.9 * p / 100) for m in means]
            lines.append(f"{p}," + ",".join(f"{v:.1f}" for v in vals) + ",")
        lines.append(pad)
    lines += ["[Diffusion Coefficient Data],,", "Analysis Method,FTLA,", "Weighting,Number,",
              "Filename," + ",".join(NTA_VIDEOS) + ",Average,Standard Error,"]
    d_mean = [_diffusion_1e4_nm2_per_s(m) if m else 0.0 for m in NTA_MEANS]
    lines.append("Mean," + ",".join(f"{v:.1f}" for v in d_mean)
                 + f",{_diffusion_1e4_nm2_per_s(NTA_AVERAGE['Mean']):.1f},4.2,")
    lines.append("Mode," + ",".join(f"{v:.1f}" for v in d_mean) + f",{d_mean[0]:.1f},3.0,")
    lines += ["Graph Data,", "Bin centre (1e4 nm^2/s)," + ",".join(["Concentration (particles / ml)"] * n)
              + ",Concentration average,Standard Error,"]
    for b in np.arange(5.0, 1000.0, 10.0):
        lines.append(f"{b}," + ",".join("0" for _ in NTA_VIDEOS) + ",0,0,")
    lines.append(pad)
    text = "\r\n".join(lines) + "\r\n"
    (HERE / "nta34_weightings_ExperimentSummary.csv").write_bytes(text.encode("cp1252"))


def write_nano() -> None:
    text = "\r\n".join([
        "[Experiment]",
        "SoftwareVersion=NTA 3.4 Build 3.4.4",
        "SampleDescription=EV lot 7 (SEC F2)",
        "",
        "[Filenames]",
        *[f"Video{i}=C:\\NanoSight\\Data\\2025-11-03\\{v}.avi" for i, v in enumerate(NTA_VIDEOS)],
        "",
        "[CaptureSettings]",
        "PixelSize=140",
        "DilutionFactor=500",
        "CameraLevel=14",
        "FrameRate=24.9825",
        "Temperature=25.0",
        "",
    ])
    (HERE / "ev_lot7.nano").write_bytes(text.encode("cp1252"))


# --- NanoSight per-particle exports ------------------------------------------------
PARTICLE_HEADER = ("Particle ID,Size/nm,Diffusion coefficient/nm^2 s^-1,Ln(Adjusted intensity)/AU,"
                   "Start frame,Tracklength,Included in distribution?")
TRACK_HEADER = ("Particle ID,Size/nm,Diffusion coefficient/nm^2 s^-1,Frame,X/pixels,Y/pixels,"
                "Ln(Adjusted intensity)/AU,Included in distribution?")
TRACKS_PIXEL_NM = 140.0
TRACKS_FPS = 24.9825
TRACKS_DIAMETER_NM = 100.0


def _d_nm2_per_s(diameter_nm: float, temperature_c: float = 22.0, viscosity_cp: float = 0.952941) -> float:
    return KB_J_PER_K * (temperature_c + 273.15) / (3 * math.pi * viscosity_cp * 1e-3 * diameter_nm * 1e-9) * 1e18


def write_particle_data() -> None:
    rng = np.random.default_rng(11)
    n = 200
    sizes = np.round(rng.lognormal(math.log(105.0), 0.25, n), 1)
    included = rng.random(n) > 0.1
    lines = [PARTICLE_HEADER]
    for i in range(n):
        lines.append(f"{i + 1},{sizes[i]:.1f},{_d_nm2_per_s(sizes[i]):.1f},{rng.normal(8, 1):.3f},"
                     f"{int(rng.integers(0, 1400))},{int(rng.integers(5, 60))},{'True' if included[i] else 'False'}")
    (HERE / "ev_lot7_00_ParticleData.csv").write_text("\r\n".join(lines) + "\r\n", encoding="cp1252")


def write_all_tracks() -> None:
    """Brownian tracks of 100 nm spheres (22 C water), 60 particles x 20 frames, no noise."""
    rng = np.random.default_rng(12)
    d_px2_per_frame = _d_nm2_per_s(TRACKS_DIAMETER_NM) / TRACKS_PIXEL_NM**2 / TRACKS_FPS
    step = math.sqrt(2 * d_px2_per_frame)
    lines = [TRACK_HEADER]
    rows = []
    for pid in range(1, 61):
        start = int(rng.integers(0, 100))
        x, y = rng.uniform(50, 1200), rng.uniform(50, 980)
        ln_i = rng.normal(8, 0.5)
        for f in range(start, start + 20):
            rows.append((pid, f, x, y, ln_i))
            x += rng.normal(0, step)
            y += rng.normal(0, step)
    order = rng.permutation(len(rows))  # exports are not guaranteed to be sorted
    for k in order:
        pid, f, x, y, ln_i = rows[k]
        lines.append(f"{pid},{TRACKS_DIAMETER_NM:.1f},{_d_nm2_per_s(TRACKS_DIAMETER_NM):.1f},{f},"
                     f"{x:.3f},{y:.3f},{ln_i:.4f},True")
    (HERE / "ev_lot7_00_AllTracks.csv").write_text("\r\n".join(lines) + "\r\n", encoding="cp1252")


# --- ZetaView ----------------------------------------------------------------------
ZV_COUNTS_SEED = 21


def zetaview_run():
    """The simulated EV lot 7 run: 2000 traces from a lognormal (median 110 nm, sigma 0.35)."""
    return zetaview_gen.lognormal_run(n=2000, median_nm=110.0, sigma=0.35, seed=ZV_COUNTS_SEED,
                                      measured_per_ml=3.2e7, dilution=500.0)


def write_zetaview() -> None:
    run = zetaview_run()
    zetaview_gen.write_run(HERE, "20251103_0001_EVlot7_size_488", run)
    prof = HERE / "20251103_0003_EVlot7_prof_488.txt"
    prof.write_bytes(zetaview_gen.profile_file(run, prof.name, mobility_um_cm_per_v_s=-1.9,
                                               vendor_zeta_mv=-24.2))
    empty = zetaview_gen.Run(sizes_nm=np.empty(0), measured_per_ml=0.0, dilution=1.0, sample="PBS blank")
    zero = HERE / "20251103_0004_buffer_size_488.txt"
    zero.write_bytes(zetaview_gen.size_file(empty, zero.name))


# --- BCA plates --------------------------------------------------------------------
BCA_STANDARDS = (0, 25, 125, 250, 500, 750, 1000, 1500, 2000)  # ug/mL, Pierce BSA kit levels
BCA_TRUE = {"a": 0.0, "b": 1.2, "c50": 1900.0, "d": 3.6}  # 4PL truth (blank-subtracted A562)
BCA_BLANK = 0.095
BCA_SAMPLES = {"EV-lot7": (420.0, 2.0), "EV-lot8": (95.0, 1.0), "EV-lot9-conc": (3100.0, 1.0),
               "EV-lot10-dilute": (8.0, 1.0)}  # name: (true ug/mL in the original sample, dilution)
MICRO_STANDARDS = (0, 0.5, 2.5, 5, 10, 20, 40)  # ug/mL, micro-BCA linear range
MICRO_TRUE = {"intercept": 0.0, "slope": 0.0262}
MICRO_SAMPLES = {"EV-lot7": (61.0, 5.0), "EV-lot8": (12.5, 1.0)}


def four_pl(c, a, b, c50, d):
    return d + (a - d) / (1.0 + (np.asarray(c, dtype=float) / c50) ** b)


def write_bca() -> None:
    rng = np.random.default_rng(31)
    noise = 0.006  # A562 SD between replicate wells
    rows = ["Assay,Pierce BCA,,,,", "Reader,Absorbance 562 nm,,,,", ",,,,,",
            "Well,Type,ID,Concentration (ug/mL),Absorbance (562 nm),Dilution"]
    wells = iter(f"{r}{c}" for c in range(1, 13) for r in "ABCDEFGH")
    for _ in range(3):
        rows.append(f"{next(wells)},Blank,Blank,,{BCA_BLANK + rng.normal(0, noise):.4f},")
    for level in BCA_STANDARDS:
        for _ in range(2):
            a = BCA_BLANK + four_pl(level, **BCA_TRUE) + rng.normal(0, noise)
            rows.append(f"{next(wells)},Standard,S{level},{level},{a:.4f},")
    for name, (conc, dil) in BCA_SAMPLES.items():
        for _ in range(3):
            a = BCA_BLANK + four_pl(conc / dil, **BCA_TRUE) + rng.normal(0, noise)
            rows.append(f"{next(wells)},Sample,{name},,{a:.4f},{dil:g}")
    (HERE / "bca_plate.csv").write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    write_grid_and_layout(rows[4:])

    rows = ["Well;Type;ID;Concentration (ug/mL);A562;Dilution"]
    wells = iter(f"{r}{c}" for c in range(1, 13) for r in "ABCDEFGH")
    for level in MICRO_STANDARDS:
        for _ in range(2):
            a = BCA_BLANK + MICRO_TRUE["intercept"] + MICRO_TRUE["slope"] * level + rng.normal(0, 0.004)
            rows.append(f"{next(wells)};Standard;S{level};{level};{a:.4f};")
    for name, (conc, dil) in MICRO_SAMPLES.items():
        for _ in range(2):
            a = BCA_BLANK + MICRO_TRUE["slope"] * conc / dil + rng.normal(0, 0.004)
            rows.append(f"{next(wells)};Sample;{name};;{a:.4f};{dil:g}")
    (HERE / "microbca_plate.csv").write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")


def write_grid_and_layout(well_rows: list[str]) -> None:
    """The same plate as bca_plate.csv, as a reader's 8 x 12 grid plus a separate layout."""
    absorb = {}
    layout = ["Well,Type,ID,Concentration (ug/mL),Dilution"]
    for row in well_rows:
        well, kind, ident, conc, a, dil = row.split(",")
        absorb[well] = a
        layout.append(f"{well},{kind},{ident},{conc},{dil}")
    grid = ["Plate 1,Absorbance @ 562 nm,", "", "," + ",".join(str(c) for c in range(1, 13))]
    for r in "ABCDEFGH":
        grid.append(r + "," + ",".join(absorb.get(f"{r}{c}", "") for c in range(1, 13)))
    (HERE / "bca_grid.csv").write_text("\r\n".join(grid) + "\r\n", encoding="utf-8")
    (HERE / "bca_layout.csv").write_text("\r\n".join(layout) + "\r\n", encoding="utf-8")


if __name__ == "__main__":
    write_nta_summary()
    write_nano()
    write_particle_data()
    write_all_tracks()
    write_zetaview()
    write_bca()
    print("fixtures written to", HERE)
