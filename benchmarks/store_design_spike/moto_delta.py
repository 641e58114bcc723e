"""delta-rs on moto's S3 server: does a commit work, and is put-if-absent enforced (two
writers racing for the same log entry)? Also: does moto honour If-None-Match on PUT?"""
import logging, os, sys, time, json
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.WARNING)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False); server.start()
host, port = server.get_host_and_port(); ep = f"http://{host}:{port}"
os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                   "AWS_ENDPOINT_URL": ep, "AWS_EC2_METADATA_DISABLED": "true"})
import boto3
s3 = boto3.client("s3", endpoint_url=ep); s3.create_bucket(Bucket="spike")
s3.put_object(Bucket="spike", Key="x", Body=b"1")
try:
    s3.put_object(Bucket="spike", Key="x", Body=b"2", IfNoneMatch="*"); print("moto If-None-Match: NOT enforced (second PUT accepted)")
except Exception as e:
    print("moto If-None-Match: enforced:", type(e).__name__, str(e)[:100])
try:
    s3.delete_object(Bucket="spike", Key="x", IfMatch='"nope"'); print("moto conditional DELETE (If-Match): not enforced / accepted")
except Exception as e:
    print("moto conditional DELETE:", type(e).__name__, str(e)[:100])
import pyarrow as pa
from deltalake import write_deltalake, DeltaTable
opts = {"AWS_ENDPOINT_URL": ep, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing"}
for extra in ({}, {"conditional_put": "etag"}, {"AWS_S3_ALLOW_UNSAFE_RENAME": "true"}):
    uri = f"s3://spike/t{len(extra)}{list(extra)[:1]}".replace("[", "").replace("]", "").replace("'", "")
    try:
        t0 = time.perf_counter()
        write_deltalake(uri, pa.table({"shard": ["a", "b"], "x": [1, 2]}), storage_options={**opts, **extra})
        write_deltalake(uri, pa.table({"shard": ["a"], "x": [3]}), mode="overwrite", predicate="shard = 'a'",
                        storage_options={**opts, **extra})
        dt = DeltaTable(uri, storage_options={**opts, **extra})
        print(f"delta on moto with {extra or 'defaults'}: ok, version {dt.version()}, rows {dt.to_pyarrow_table().num_rows}, "
              f"{time.perf_counter() - t0:.2f} s")
    except Exception as e:
        print(f"delta on moto with {extra or 'defaults'}: FAILED {type(e).__name__}: {str(e)[:300]}")
json.dump({"endpoint": ep}, open("endpoint.json", "w"))
if len(sys.argv) > 1:
    print("serving", ep, flush=True); time.sleep(int(sys.argv[1]))
server.stop()
