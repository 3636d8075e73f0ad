# The indexer's image: the worker (`index`), the API (`serve`), `migrate` and the local network (`devnet`).
# Dependencies are installed from requirements.lock (exact versions and hashes; `make lock` renews it).
# The embedded PostgreSQL server is not in the image: DATABASE_URL names the database.

FROM python:3.11-slim AS build
RUN python -m venv /opt/flowfi
COPY requirements.lock /tmp/requirements.lock
RUN /opt/flowfi/bin/pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.lock
WORKDIR /src
COPY pyproject.toml README.md ./
COPY flowfi ./flowfi
COPY indexer ./indexer
COPY api ./api
COPY devnet ./devnet
COPY migrations ./migrations
RUN /opt/flowfi/bin/pip install --no-cache-dir --no-deps .

FROM python:3.11-slim
COPY --from=build /opt/flowfi /opt/flowfi
ENV PATH=/opt/flowfi/bin:$PATH PYTHONUNBUFFERED=1
RUN useradd --create-home flowfi
USER flowfi
# the local network's chain (compose mounts a volume here, which takes this folder's owner)
RUN mkdir /home/flowfi/devnet
ENTRYPOINT ["flowfi"]
