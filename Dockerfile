FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY flowfi ./flowfi
COPY indexer ./indexer
COPY api ./api
COPY devnet ./devnet
COPY migrations ./migrations
RUN pip install --no-cache-dir . && useradd --create-home flowfi
USER flowfi
ENTRYPOINT ["flowfi"]
