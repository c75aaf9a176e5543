# xdplab in a container: JupyterLab with the lessons on port 8888.
#
#   make image          (or: DOCKER_BUILDKIT=1 docker build -t xdplab .)
#   docker run --privileged -p 127.0.0.1:8888:8888 xdplab      # then open the URL from the log
#
# Behind a TLS-intercepting proxy: XDPLAB_CA_BUNDLE=/path/ca.pem make image (env/image.sh hands the
# bundle in as a BuildKit secret: used by apt and pip during the build, kept in no layer).
#
# --privileged is required: the lessons create network namespaces, load and attach XDP programs
# (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_BPF) and mount bpffs/tracefs. XDP runs in the kernel of the
# machine (or of the Docker Desktop / WSL2 VM) the container runs on, never in the image; xdplab
# only attaches programs to interfaces inside its own lab namespaces. See README, "Docker".
ARG BASE=debian:12
FROM ${BASE}

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/xdplab

# tini as PID 1 reaps orphaned children (a lab's watchdog outlives a crashed notebook kernel).
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*

# Install from only the files env/install.sh reads, so that changing lessons or xdplab/ does not
# re-run apt and pip. The editable install of xdplab needs the package directory to exist; it maps
# the directory, so the real sources copied below are what runs.
# At build time there is no privilege: install.sh's bpffs/tracefs mounts fail (harmlessly) here and
# are made when the container starts. The kernel header tree is built from the distro's headers
# (linux-headers-<arch>), since the kernel the container will run on is not known yet.
COPY env/ env/
COPY pyproject.toml ./
RUN --mount=type=secret,id=xdplab_ca \
    mkdir -p xdplab && touch xdplab/__init__.py \
 && if [ -s /run/secrets/xdplab_ca ]; then export XDPLAB_CA_BUNDLE=/run/secrets/xdplab_ca; fi \
 && bash env/install.sh \
 && rm -rf /var/lib/apt/lists/* /root/.cache/pip
COPY . .

EXPOSE 8888
ENTRYPOINT ["/usr/bin/tini", "--"]
# At start: install.sh again (quick: only mounts bpffs/tracefs, everything else is there), the
# doctor's report for the kernel we actually run on, then JupyterLab on all interfaces of the
# container (publish it on the host's loopback only: -p 127.0.0.1:8888:8888). The token is printed
# in the log; set XDPLAB_TOKEN (docker run -e XDPLAB_TOKEN=...) to choose it.
CMD ["bash", "-c", "bash env/install.sh && { .venv/bin/python -m xdplab doctor || true; } && exec bash env/lab.sh 0.0.0.0 8888"]
