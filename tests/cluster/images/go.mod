module graylane.invalid/imageprogs

go 1.25.0
