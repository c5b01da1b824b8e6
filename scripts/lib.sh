# Shared by the set-up scripts (sourced, not run).

# find_python X.Y: the path of a Python X.Y interpreter, found on PATH or, failing that, among
# pyenv's installed versions (the newest X.Y.*). Fails when there is none.
find_python() {
  local want=$1 candidate version
  for candidate in "python$want" "/usr/local/bin/python$want" "/usr/bin/python$want"; do
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c "import sys; assert '%d.%d' % sys.version_info[:2] == '$want'" 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    version=$(pyenv versions --bare 2>/dev/null | grep -E "^${want//./\\.}(\.[0-9]+)?$" | sort -V | tail -n 1 || true)
    if [ -n "$version" ] && [ -x "$(pyenv root)/versions/$version/bin/python$want" ]; then
      echo "$(pyenv root)/versions/$version/bin/python$want"; return 0
    fi
  fi
  return 1
}

# pip_install VENV ARGS...: pip install into VENV with its output in VENV/setup.log, shown (less
# the registry's noise) only when the install fails.
pip_install() {
  local venv=$1; shift
  if ! "$venv/bin/python" -m pip install --quiet "$@" >>"$venv/setup.log" 2>&1; then
    grep -v "is ignored: it is neither" "$venv/setup.log" | tail -n 40 >&2
    echo "error: pip install $* failed; full log in $venv/setup.log" >&2
    exit 1
  fi
}
