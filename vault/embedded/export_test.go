package embedded

// Bucket names, for tests in vault_test that tamper with the file directly.
var (
	BucketMeta        = bucketMeta
	BucketDataKeys    = bucketDataKeys
	BucketCredentials = bucketCredentials
)
