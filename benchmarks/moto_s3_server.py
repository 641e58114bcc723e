"""A local S3 API for the store benchmarks: moto's server (as curation_assets_tests/test_store_s3.py
starts it), kept running until killed, its state in memory (gone when it stops).

    python benchmarks/moto_s3_server.py --bucket curation-scale --env-file /work/scale/s3.env &
    set -a; . /work/scale/s3.env; set +a     # AWS_* for the CLI and the benchmark's children
"""

import argparse
import logging
import time

from moto.server import ThreadedMotoServer


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--bucket", default="curation-scale")
    p.add_argument("--env-file", required=True)
    a = p.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_EC2_METADATA_DISABLED": "true"}
    import boto3

    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=a.bucket)
    with open(a.env_file, "w") as fh:
        fh.writelines(f"{k}={v}\n" for k, v in env.items())
    print(f"S3 API at {env['AWS_ENDPOINT_URL']}, bucket {a.bucket}; env in {a.env_file}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
