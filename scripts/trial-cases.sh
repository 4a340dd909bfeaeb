#!/bin/bash
# The fault trial's cases (bad values, size guards, unreadable input, exit statuses, modes), run
# through the installed twolayer in a fresh temporary folder: one line per case with its exit
# status and the last line of stderr. Usage: bash scripts/trial-cases.sh
cd "$(mktemp -d)"
T="python -m twolayer"
case_() { local name="$1"; shift; out=$("$@" 2>err.txt >out.txt; echo $?); echo "[$name] exit=$out | $(tail -n1 err.txt | cut -c1-150)"; }
cat > one.toml <<'T'
model = "onestep"
method = "theory"
[params]
alpha = [0.5, 1.0]
T
case_ "1 run, no [sweep]" $T run one.toml --workers 0
case_ "1 show, no [sweep]" $T show one.nc
case_ "4 theory --d 100000" $T onestep theory --d 100000
case_ "4 simulate --d 100000" $T onestep simulate --d 100000
case_ "4 sgd ode --d 100000 --p 100000" $T sgd ode --p 100000 --d 100000 --reduction full
case_ "4 --p 1e11" $T sgd ode --p 1e11
case_ "4 --seeds 1e9" $T onestep simulate --seeds 1000000000
case_ "4 --alpha 1e12" $T onestep simulate --alpha 1e12
cat > big.toml <<'T'
model = "onestep"
method = "theory"
[sweep]
lam = {linspace = [0.001, 1.0, 1000000000]}
T
case_ "4 linspace 1e9" $T run big.toml --workers 0
case_ "6 --seed -1" $T onestep simulate --seed -1 --d 200
printf '\xff\xfe{bad' > bad.json
case_ "6 non-UTF-8 --init" $T sgd ode --init bad.json
python -c "import xarray as xr; xr.Dataset(attrs={'experiment_key':'x'}).to_netcdf('nostatus.nc')"
case_ "6 show without status" $T show nostatus.nc
case_ "6 eta 1e300 relu (simulate)" $T onestep simulate --eta 1e300 --student relu --d 200 --seeds 1
case_ "6 eta 1e300 relu (theory)" $T onestep theory --eta 1e300 --student relu
case_ "6 --draws -5 --d inf" $T onestep theory --draws -5
case_ "6 --dt nan" $T sgd ode --dt nan
case_ "6 --rtol nan" $T sgd ode --rtol nan
case_ "7 --out same --plot same" $T onestep theory --out same.png --plot same.png
case_ "8 init-scale 1e100" $T sgd ode --init-scale 1e100 --t-max 1
case_ "8 t-max 1e300" $T sgd ode --t-max 1e300
case_ "8 init-scale 1e4 (erf kernel)" $T sgd ode --init-scale 1e4 --t-max 1
case_ "10 umask 022 file mode" bash -c "umask 022; $T onestep theory --out m.nc >/dev/null && stat -c %a m.nc >&2"
case_ "x unknown activation" $T onestep theory --student nope
case_ "x --activations bad.name!" $T --activations 'bad.name!' onestep theory
case_ "x --activations missing module" $T --activations no_such_mod onestep theory
case_ "x store ls" $T store ls one.toml
case_ "x sgd ode --batch 0" $T sgd ode --batch 0
case_ "x sgd ode gamma-a wide" $T sgd ode --gamma-a 0.5 --reduction wide --p 100 --d 1000
case_ "x plot overlay mismatch" bash -c "$T sgd ode --t-max 1 --out o.nc >/dev/null; $T plot one.nc o.nc --out ov.png"
