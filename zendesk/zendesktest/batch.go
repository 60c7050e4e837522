package zendesktest

// batchJob is a background job of update_many.
type batchJob struct{}
